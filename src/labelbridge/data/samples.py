"""What a reader yields and reports: samples, file pairs, skipped files, problem kinds.

A :class:`Sample` holds the RGB image as ``(H, W, 3)`` uint8 and the label map in the
dataset's own raw ids as ``(H, W)`` int32 (see :mod:`labelbridge.taxonomy.taxonomy`).
A problem with one file is a :class:`SampleError` of one of :data:`PROBLEM_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from labelbridge.errors import DatasetError

OnError = Literal["raise", "skip"]

# Kinds of problems with one sample (SampleError.kind, SkipRecord.kind).
MISSING_LABEL = "missing_label"
MISSING_FILE = "missing_file"
UNREADABLE = "unreadable"
CORRUPT = "corrupt"
SIZE_MISMATCH = "size_mismatch"
UNKNOWN_LABEL = "unknown_label"
OTHER_PROBLEM = "other"  # recorded by code that does not classify the problem
PROBLEM_KINDS = (
    MISSING_LABEL,
    MISSING_FILE,
    UNREADABLE,
    CORRUPT,
    SIZE_MISMATCH,
    UNKNOWN_LABEL,
    OTHER_PROBLEM,
)


class SampleError(DatasetError):
    """A problem with one file of one sample.

    Attributes:
        path: the offending file.
        kind: one of :data:`PROBLEM_KINDS`.
    """

    def __init__(self, path: Path | str, kind: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.kind = kind


@dataclass
class Sample:
    """One image with its label map.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        label: ``(H, W)`` int32 raw ids of the dataset's taxonomy, or ``None`` when the
            split has no labels.
        dataset: dataset name (registry key).
        split: split name.
        key: the image's path relative to the dataset root, without extension; used to
            mirror outputs (pseudo-labels are written to ``<out>/<key>.png``).
        image_path: the image file.
        label_path: the label file, or ``None``.
    """

    image: np.ndarray
    label: np.ndarray | None
    dataset: str
    split: str
    key: str
    image_path: Path
    label_path: Path | None = None


@dataclass
class SkipRecord:
    """A file skipped under ``on_error="skip"``: which, why, and the kind of problem
    (one of :data:`PROBLEM_KINDS`)."""

    path: str
    problem: str
    kind: str = OTHER_PROBLEM


@dataclass
class FilePair:
    """An image file and its label file (``None`` for unlabelled splits)."""

    image: Path
    label: Path | None
    key: str = ""
