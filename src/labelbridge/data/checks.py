"""Dataset checks: pair counts, missing labels, size mismatches, unknown ids, unreadable
files and a class histogram per split, without building any model.

Fast enough for whole datasets: labels are decoded (for the histogram and the id
check), images only have their header read for the size (``verify_images=True``
decodes them fully, which also finds truncated images).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelbridge.data.base import (
    MISSING_LABEL,
    FilePair,
    SampleError,
    SegmentationDataset,
    read_image,
    read_image_size,
    read_label_png,
    read_label_rgb,
    resolve_root,
)
from labelbridge.data.registry import dataset_class
from labelbridge.errors import DatasetError, SplitAbsent

logger = logging.getLogger(__name__)


@dataclass
class FileProblem:
    """One problem with one file."""

    path: str
    problem: str


@dataclass
class SplitReport:
    """What :func:`check_dataset` found in one split.

    Attributes:
        split: split name.
        labelled: ``False`` for splits published without labels.
        images: image files listed (including those without a label file).
        pairs: images with a label file (0 for unlabelled splits).
        unlabelled_images: images of an unlabelled split (not a problem).
        checked: images whose files were opened (all, or ``sample`` of them).
        images_without_labels: images of a labelled split with no label file.
        size_mismatches: label files whose size differs from their image's.
        unknown_ids: label file -> raw ids (or colours, as text) outside the taxonomy.
        unreadable: files that could not be opened or decoded.
        class_histogram: taxonomy class name -> pixel count over the checked labels
            (every class, zeros included).
        error: a problem with the whole split (missing folder, no images), else ``None``.
        absent: why the split counts as not downloaded (its image folder or list file is
            missing; see :class:`~labelbridge.errors.SplitAbsent`), else ``None``. Not a
            problem when the split was not asked for by name.
    """

    split: str
    labelled: bool = True
    images: int = 0
    pairs: int = 0
    unlabelled_images: int = 0
    checked: int = 0
    images_without_labels: list[str] = field(default_factory=list)
    size_mismatches: list[FileProblem] = field(default_factory=list)
    unknown_ids: dict[str, list[Any]] = field(default_factory=dict)
    unreadable: list[FileProblem] = field(default_factory=list)
    class_histogram: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    absent: str | None = None

    @property
    def num_problems(self) -> int:
        """Files with a problem, plus one for a split-level error."""
        return (
            len(self.images_without_labels)
            + len(self.size_mismatches)
            + len(self.unknown_ids)
            + len(self.unreadable)
            + (1 if self.error else 0)
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["num_problems"] = self.num_problems
        return out


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found, per split."""

    dataset: str
    root: str
    taxonomy: str
    splits: list[SplitReport] = field(default_factory=list)

    @property
    def num_problems(self) -> int:
        return sum(s.num_problems for s in self.splits)

    @property
    def ok(self) -> bool:
        return self.num_problems == 0

    def split(self, name: str) -> SplitReport:
        """The report of split ``name``.

        Raises:
            KeyError: the split was not checked.
        """
        for s in self.splits:
            if s.split == name:
                return s
        raise KeyError(f"split {name!r} was not checked; checked: {[s.split for s in self.splits]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "root": self.root,
            "taxonomy": self.taxonomy,
            "ok": self.ok,
            "num_problems": self.num_problems,
            "splits": [s.to_dict() for s in self.splits],
        }


def _sample_indices(n: int, sample: int | None) -> list[int]:
    """All indices, or ``sample`` of them evenly spread (deterministic)."""
    if sample is None or sample >= n:
        return list(range(n))
    if sample <= 0:
        raise DatasetError(f"sample must be a positive number of images, got {sample}")
    return sorted({int(i) for i in np.linspace(0, n - 1, sample).round()})


def _label_counts(
    ds: SegmentationDataset, path: Path
) -> tuple[np.ndarray, tuple[int, int], list[Any]]:
    """Pixel counts per raw id, the label's ``(width, height)`` and unknown ids/colours.

    Raises:
        SampleError: the file cannot be read.
    """
    tax = ds.taxonomy
    if tax.label_format == "color":
        rgb = read_label_rgb(path)
        size = (rgb.shape[1], rgb.shape[0])
        try:
            ids = tax.colors_to_ids(rgb)
        except ValueError:
            colours = np.unique(rgb.reshape(-1, 3), axis=0)
            known = {c.color for c in tax.classes}
            bad = [
                str(tuple(int(v) for v in c))
                for c in colours
                if tuple(int(v) for v in c) not in known
            ]
            ids = tax.colors_to_ids(rgb, unknown_as_ignore=True)
            counts = np.bincount(ids.ravel(), minlength=1)
            return counts, size, bad
        return np.bincount(ids.ravel(), minlength=1), size, []
    label = read_label_png(path)
    size = (label.shape[1], label.shape[0])
    counts = np.bincount(label.ravel().astype(np.int64), minlength=1)
    return counts, size, tax.unknown_ids(np.flatnonzero(counts))


def _check_pair(
    ds: SegmentationDataset,
    pair: FilePair,
    report: SplitReport,
    totals: dict[int, int],
    verify_images: bool,
) -> None:
    try:
        if verify_images:
            img = read_image(pair.image)
            image_size = (img.shape[1], img.shape[0])
        else:
            image_size = read_image_size(pair.image)
    except SampleError as exc:
        report.unreadable.append(FileProblem(exc.path, str(exc)))
        image_size = None
    if pair.label is None:
        return
    try:
        counts, label_size, bad = _label_counts(ds, pair.label)
    except SampleError as exc:
        report.unreadable.append(FileProblem(exc.path, str(exc)))
        return
    if image_size is not None and label_size != image_size:
        report.size_mismatches.append(
            FileProblem(
                str(pair.label),
                f"label {label_size[0]}x{label_size[1]} vs image {pair.image} {image_size[0]}x{image_size[1]}",
            )
        )
    if bad:
        report.unknown_ids[str(pair.label)] = bad
    for raw_id in np.flatnonzero(counts).tolist():
        totals[raw_id] = totals.get(raw_id, 0) + int(counts[raw_id])


def check_split(
    name: str,
    root: str | Path | None,
    split: str,
    *,
    sample: int | None = None,
    verify_images: bool = False,
) -> SplitReport:
    """Check one split; problems are collected, never raised (see :class:`SplitReport`)."""
    cls = dataset_class(name)
    report = SplitReport(split=split, labelled=split not in cls.unlabelled_splits)
    try:
        ds = cls(root, split, on_error="skip")
    except SplitAbsent as exc:
        report.absent = str(exc)
        return report
    except DatasetError as exc:
        report.error = str(exc)
        return report
    report.labelled = ds.has_labels
    missing = [r.path for r in ds.skipped if r.kind == MISSING_LABEL]
    report.images_without_labels = missing
    report.images = len(ds.pairs) + len(missing)
    labelled_pairs = sum(p.label is not None for p in ds.pairs)
    report.pairs = labelled_pairs
    report.unlabelled_images = len(ds.pairs) - labelled_pairs
    totals: dict[int, int] = {}
    indices = _sample_indices(len(ds.pairs), sample)
    for i in indices:
        _check_pair(ds, ds.pairs[i], report, totals, verify_images)
    report.checked = len(indices)
    if labelled_pairs:
        report.class_histogram = {c.name: int(totals.get(c.id, 0)) for c in ds.taxonomy.classes}
    logger.info("%s/%s: %d pairs, %d problems", name, split, report.pairs, report.num_problems)
    return report


def check_dataset(
    name: str,
    root: str | Path | None,
    splits: list[str] | None = None,
    *,
    sample: int | None = None,
    verify_images: bool = False,
) -> DatasetReport:
    """Check a dataset's files split by split.

    Args:
        name: registry name of the reader (``labelbridge datasets list``).
        root: dataset root (``None``: ``$LABELBRIDGE_DATA/<name>``).
        splits: splits to check (default: all published splits, or for the generic
            folder layout all split folders present). A split asked for by name must be
            there; of the default ones, a split not downloaded (no image folder or list
            file) is reported as ``absent`` and is no problem, as long as one split is
            there.
        sample: open only this many images per split, evenly spread (counts of pairs
            and missing labels still cover the whole split).
        verify_images: decode images fully (finds truncated images; slower) instead
            of reading only their header.

    Returns:
        The report; ``report.ok`` is ``False`` when any problem was found.

    Raises:
        UserError: unknown dataset name, split or missing root; no default split is
            there (each absence named).
    """
    cls = dataset_class(name)
    wanted = list(splits) if splits else list(cls.available_splits(root))
    if cls.splits:
        unknown = [s for s in wanted if s not in cls.splits]
        if unknown:
            raise DatasetError(
                f"dataset {name!r} has no split(s) {unknown}; splits: {list(cls.splits)}"
            )
    root_path = resolve_root(root, name)
    if not wanted:
        raise DatasetError(
            f"{root_path}: no split of {name!r} found (expected layout: {cls.layout})"
        )
    reports = [
        check_split(name, root_path, s, sample=sample, verify_images=verify_images) for s in wanted
    ]
    if splits:  # asked for by name: its absence is the problem
        for r in reports:
            if r.absent:
                r.error, r.absent = r.absent, None
    elif all(r.absent for r in reports):
        raise DatasetError(
            f"{root_path}: no split of {name!r} found: "
            + "; ".join(f"{r.split}: {r.absent}" for r in reports)
        )
    return DatasetReport(
        dataset=name,
        root=str(root_path),
        taxonomy=cls.taxonomy_name or "<root>/taxonomy.yaml",
        splits=reports,
    )
