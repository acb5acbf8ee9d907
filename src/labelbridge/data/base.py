"""Dataset readers: the base class every published layout builds on.

A reader lists (image, label) file pairs for one split of one dataset and yields
:class:`Sample` objects: the RGB image as ``(H, W, 3)`` uint8 and the label map in the
dataset's own raw ids as ``(H, W)`` int32 (see :mod:`labelbridge.taxonomy.taxonomy`).

Problems with a file (unreadable, truncated, size mismatch, ids outside the taxonomy)
raise :class:`~labelbridge.errors.DatasetError` naming the file, or, with
``on_error="skip"``, are recorded in :attr:`SegmentationDataset.skipped` and the sample
is dropped by iteration helpers (see :meth:`SegmentationDataset.iter_samples`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from PIL import Image

from labelbridge.constants import DATA_ROOT_ENV
from labelbridge.errors import DatasetError
from labelbridge.taxonomy import Taxonomy, load_taxonomy

OnError = Literal["raise", "skip"]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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
    """A file skipped under ``on_error="skip"``: which and why."""

    path: str
    problem: str


@dataclass
class FilePair:
    """An image file and its label file (``None`` for unlabelled splits)."""

    image: Path
    label: Path | None
    key: str = ""


def read_image(path: Path) -> np.ndarray:
    """Read an RGB image as ``(H, W, 3)`` uint8.

    Raises:
        DatasetError: missing, unreadable, truncated or corrupt file (named).
    """
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot decode image (truncated or corrupt?): {exc}") from None


def read_label_png(path: Path) -> np.ndarray:
    """Read an id-coded label PNG (mode L, P or I;16) as ``(H, W)`` int32 raw ids.

    Palette images give their palette *indices* (as the YCOR and Cityscapes files store them).

    Raises:
        DatasetError: missing, unreadable, truncated, or an RGB file where ids were expected.
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGB", "RGBA"):
                raise DatasetError(
                    f"{path}: label file is colour ({im.mode}) but this dataset stores class ids; "
                    "use a taxonomy with label_format: color"
                )
            return np.asarray(im, dtype=np.int32).copy()
    except FileNotFoundError:
        raise DatasetError(f"{path}: label file not found") from None
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot decode label file (truncated or corrupt?): {exc}") from None


def read_label_rgb(path: Path) -> np.ndarray:
    """Read a colour-coded label image as ``(H, W, 3)`` uint8."""
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise DatasetError(f"{path}: label file not found") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot decode label file (truncated or corrupt?): {exc}") from None


def resolve_root(root: str | Path | None, dataset: str) -> Path:
    """Dataset root: the argument, else ``$LABELBRIDGE_DATA/<dataset>``.

    Raises:
        DatasetError: neither given, or the folder does not exist.
    """
    if root is None:
        base = os.environ.get(DATA_ROOT_ENV)
        if not base:
            raise DatasetError(
                f"no root given for dataset {dataset!r}: pass --root DIR or set ${DATA_ROOT_ENV} "
                f"to the folder that holds '{dataset}/'"
            )
        root = Path(base) / dataset
    path = Path(root)
    if not path.is_dir():
        raise DatasetError(f"{path}: dataset root of {dataset!r} is not a folder")
    return path


class SegmentationDataset:
    """Base reader. Subclasses set the class attributes and implement :meth:`list_pairs`.

    Args:
        root: dataset root folder (or ``None`` to use ``$LABELBRIDGE_DATA/<name>``).
        split: split name, one of :attr:`splits`.
        on_error: ``"raise"`` (default) or ``"skip"`` (record and drop bad samples).
        unknown_as_ignore: map label ids/colours outside the taxonomy to ignore instead
            of raising (explicit opt-in).
        taxonomy: override the taxonomy (name, path or object), e.g. for a generic folder.

    Class attributes:
        name: registry key.
        taxonomy_name: built-in taxonomy of the label files.
        splits: the published split names.
    """

    name: ClassVar[str] = ""
    taxonomy_name: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "val")

    def __init__(
        self,
        root: str | Path | None,
        split: str,
        *,
        on_error: OnError = "raise",
        unknown_as_ignore: bool = False,
        taxonomy: str | Path | Taxonomy | None = None,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.root = resolve_root(root, self.name)
        if self.splits and split not in self.splits:
            raise DatasetError(f"dataset {self.name!r} has no split {split!r}; splits: {list(self.splits)}")
        self.split = split
        self.on_error = on_error
        self.unknown_as_ignore = unknown_as_ignore
        if isinstance(taxonomy, Taxonomy):
            self.taxonomy = taxonomy
        else:
            self.taxonomy = load_taxonomy(taxonomy or self.taxonomy_name)
        self.skipped: list[SkipRecord] = []
        self.pairs: list[FilePair] = [self._with_key(p) for p in self.list_pairs()]
        if not self.pairs:
            raise DatasetError(f"{self.root}: split {split!r} of dataset {self.name!r} has no images")

    # ------------------------------------------------------------------ to implement
    def list_pairs(self) -> list[FilePair]:
        """All (image, label) pairs of the split, sorted, as paths."""
        raise NotImplementedError

    # ------------------------------------------------------------------ reading
    def _with_key(self, pair: FilePair) -> FilePair:
        if not pair.key:
            rel = pair.image.relative_to(self.root)
            pair.key = rel.with_suffix("").as_posix()
        return pair

    def __len__(self) -> int:
        return len(self.pairs)

    def read_label(self, path: Path) -> np.ndarray:
        """``(H, W)`` int32 raw ids; colour-coded files go through the taxonomy palette."""
        if self.taxonomy.label_format == "color":
            rgb = read_label_rgb(path)
            try:
                return self.taxonomy.colors_to_ids(rgb, unknown_as_ignore=self.unknown_as_ignore)
            except ValueError as exc:
                raise DatasetError(f"{path}: {exc}") from None
        return read_label_png(path)

    def load(self, index: int) -> Sample:
        """Read and validate one sample.

        Raises:
            DatasetError: any problem with either file, naming it.
        """
        pair = self.pairs[index]
        image = read_image(pair.image)
        label = None
        if pair.label is not None:
            label = self.read_label(pair.label)
            if label.shape != image.shape[:2]:
                raise DatasetError(
                    f"{pair.label}: label size {label.shape[1]}x{label.shape[0]} differs from "
                    f"image {pair.image} size {image.shape[1]}x{image.shape[0]}"
                )
            bad = self.taxonomy.unknown_ids(label)
            if bad:
                if not self.unknown_as_ignore:
                    raise DatasetError(
                        f"{pair.label}: label ids {bad[:10]} are not in taxonomy {self.taxonomy.name!r}"
                    )
                fill = self.taxonomy.ignore_ids[0] if self.taxonomy.ignore_ids else 255
                label = np.where(np.isin(label, bad), fill, label).astype(np.int32)
        return Sample(image, label, self.name, self.split, pair.key, pair.image, pair.label)

    def __getitem__(self, index: int) -> Sample:
        return self.load(index)

    def iter_samples(self) -> Iterator[Sample]:
        """Samples in order; under ``on_error="skip"`` bad ones are recorded and dropped."""
        for i in range(len(self)):
            try:
                yield self.load(i)
            except DatasetError as exc:
                if self.on_error == "raise":
                    raise
                self.skipped.append(SkipRecord(str(self.pairs[i].image), str(exc)))


@dataclass
class DatasetInfo:
    """Summary of a reader for listings."""

    name: str
    taxonomy: str
    splits: tuple[str, ...] = field(default_factory=tuple)


def pair_by_stem(images: list[Path], labels: list[Path], *, label_dir: Path) -> list[FilePair]:
    """Pair images and labels by file stem (any image extension).

    Raises:
        DatasetError: an image without a label, naming both paths.
    """
    by_stem = {p.stem: p for p in labels}
    pairs = []
    for img in sorted(images):
        lab = by_stem.get(img.stem)
        if lab is None:
            raise DatasetError(f"{img}: no label file with stem {img.stem!r} in {label_dir}")
        pairs.append(FilePair(img, lab))
    return pairs
