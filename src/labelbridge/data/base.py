"""Dataset readers: the base class every published layout builds on.

A reader lists (image, label) file pairs for one split of one dataset and yields
:class:`Sample` objects: the RGB image as ``(H, W, 3)`` uint8 and the label map in the
dataset's own raw ids as ``(H, W)`` int32 (see :mod:`labelbridge.taxonomy.taxonomy`).

Problems with a file (missing label, unreadable, truncated or corrupt, size mismatch,
ids or colours outside the taxonomy) raise :class:`SampleError` (a
:class:`~labelbridge.errors.DatasetError`) naming the file and the problem, or, with
``on_error="skip"``, are recorded in :attr:`SegmentationDataset.skipped` and the sample
is dropped: images without a label file are dropped while listing, bad files by
:meth:`SegmentationDataset.iter_samples`. A wrong label is never returned silently.

Here: :class:`SegmentationDataset` and the decoders of its files (:func:`read_image`,
:func:`read_label_png`, ...). The sample types (:class:`Sample`, :class:`SampleError`, the
problem kinds) live in :mod:`labelbridge.data.samples`, the listing helpers (roots,
prepared folders, pairing images with labels) in :mod:`labelbridge.data.listing`; both
are re-exported from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

import numpy as np
from PIL import Image

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data.listing import (
    IMAGE_EXTENSIONS,
    PREPARED_FILE,
    SPLIT_FOLDERS,
    MissingLabelHandler,
    PairListing,
    pair_by_stem,
    prepared_marker,
    resolve_root,
    walk_files,
)
from labelbridge.data.samples import (
    CORRUPT,
    MISSING_FILE,
    MISSING_LABEL,
    OTHER_PROBLEM,
    PROBLEM_KINDS,
    SIZE_MISMATCH,
    UNKNOWN_LABEL,
    UNREADABLE,
    FilePair,
    OnError,
    Sample,
    SampleError,
    SkipRecord,
)
from labelbridge.errors import DatasetError
from labelbridge.taxonomy import Taxonomy, load_taxonomy

__all__ = [
    "CORRUPT",
    "IMAGE_EXTENSIONS",
    "MISSING_FILE",
    "MISSING_LABEL",
    "OTHER_PROBLEM",
    "PREPARED_FILE",
    "PROBLEM_KINDS",
    "SIZE_MISMATCH",
    "SPLIT_FOLDERS",
    "UNKNOWN_LABEL",
    "UNREADABLE",
    "DatasetInfo",
    "FilePair",
    "MissingLabelHandler",
    "OnError",
    "PairListing",
    "Sample",
    "SampleError",
    "SegmentationDataset",
    "SkipRecord",
    "pair_by_stem",
    "prepared_marker",
    "read_image",
    "read_image_size",
    "read_label_png",
    "read_label_rgb",
    "resolve_root",
    "walk_files",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _open_error(path: Path, what: str, exc: BaseException) -> SampleError:
    """Translate an exception from opening/decoding ``path`` into a :class:`SampleError`."""
    if isinstance(exc, FileNotFoundError):
        return SampleError(path, MISSING_FILE, f"{what} file not found")
    if isinstance(exc, IsADirectoryError) or Path(path).is_dir():
        return SampleError(path, UNREADABLE, f"cannot read {what} file: it is a directory")
    if isinstance(exc, PermissionError):
        return SampleError(path, UNREADABLE, f"cannot read {what} file: permission denied")
    return SampleError(path, CORRUPT, f"cannot decode {what} file (truncated or corrupt?): {exc}")


def _decode(path: Path, what: str, decode: Callable[[Image.Image], T]) -> T:
    """``decode`` applied to the opened ``path``; a failure to open or decode it (named
    ``what``: ``"image"`` or ``"label"``) becomes a :class:`SampleError`."""
    try:
        with Image.open(path) as im:
            return decode(im)
    except SampleError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise _open_error(Path(path), what, exc) from None


def _rgb(im: Image.Image) -> np.ndarray:
    im.load()
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: Path) -> np.ndarray:
    """Read an RGB image as ``(H, W, 3)`` uint8 (grey and palette images are converted).

    Raises:
        SampleError: missing, unreadable, truncated or corrupt file (named).
    """
    return _decode(path, "image", _rgb)


def read_image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header only (no pixel decoding).

    Raises:
        SampleError: missing, unreadable, or not an image.
    """
    return _decode(path, "image", lambda im: (int(im.size[0]), int(im.size[1])))


def read_label_png(path: Path) -> np.ndarray:
    """Read an id-coded label PNG (mode L, P, I or I;16) as ``(H, W)`` int32 raw ids.

    Palette images give their palette *indices* (as the YCOR, Mapillary Vistas and
    Cityscapes files store them). A grey + alpha file (mode LA) gives its grey channel
    when every pixel is opaque.

    Raises:
        SampleError: missing, unreadable, truncated; an RGB file where ids were expected;
            a JPEG (lossy: its values are not the ids written) whatever its name; an LA
            file with transparent pixels.
    """
    return read_label_ids(path).astype(np.int32)


def read_label_ids(path: Path) -> np.ndarray:
    """:func:`read_label_png` without the cast: ``(H, W)`` raw ids in the file's own
    integer type (uint8 for mode L and P files, uint16 / int32 for I;16 / I), possibly
    read-only. For readers that count ids (evaluation) and need no int32 copy.

    Raises:
        SampleError: as :func:`read_label_png`.
    """
    return _decode(path, "label", lambda im: _label_ids(path, im))


def _label_ids(path: Path, im: Image.Image) -> np.ndarray:
    im.load()
    if im.format == "JPEG":
        raise SampleError(
            path,
            CORRUPT,
            "label file is a JPEG image (lossy compression changes the ids near every "
            "edge); labels must be stored losslessly (PNG)",
        )
    if im.mode in ("RGB", "RGBA"):
        raise SampleError(
            path,
            UNKNOWN_LABEL,
            f"label file is colour ({im.mode}) but this dataset stores class ids; "
            "use a taxonomy with label_format: color",
        )
    if im.mode in ("LA", "La", "PA"):
        grey_alpha = np.asarray(im.convert("LA") if im.mode == "La" else im)
        if (grey_alpha[..., 1] != 255).any():
            raise SampleError(
                path,
                UNKNOWN_LABEL,
                f"label file has mode {im.mode} with transparent pixels; expected one "
                "id channel (mode L, P, I or I;16)",
            )
        return grey_alpha[..., 0]
    arr = np.asarray(im)
    if arr.ndim != 2:
        raise SampleError(
            path, UNKNOWN_LABEL, f"label file has mode {im.mode}; expected one id channel"
        )
    return arr


def read_label_rgb(path: Path) -> np.ndarray:
    """Read a colour-coded label image as ``(H, W, 3)`` uint8.

    Raises:
        SampleError: missing, unreadable, truncated or corrupt file.
    """
    return _decode(path, "label", _rgb)


class SegmentationDataset(PairListing):
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
        splits: the published split names (empty: any split name the layout holds).
        unlabelled_splits: splits published without labels (their samples have
            ``label=None``).
        layout: one line describing the file layout (for listings).

    Raises:
        DatasetError: unknown split, missing folders, an image without a label (unless
            ``on_error="skip"``), or a split without any usable image.
    """

    name: ClassVar[str] = ""
    taxonomy_name: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    unlabelled_splits: ClassVar[tuple[str, ...]] = ()
    layout: ClassVar[str] = ""
    #: Name of the folder a release unpacks to (e.g. ``tas500v1.1``): a root that holds it
    #: (and not the split folders) is accepted too; see :attr:`release_dir`.
    release_folder: ClassVar[str] = ""

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
        marker = prepared_marker(self.root)
        if marker is not None and marker.get("dataset") != self.name:
            raise DatasetError(
                f"{self.root / PREPARED_FILE}: folder prepared for dataset "
                f"{marker.get('dataset')!r}, not {self.name!r}"
            )
        #: Where the published images are: the root itself, or for a folder written by
        #: ``datasets prepare`` that holds only labels, the source root it names.
        self.source_root = (
            Path(marker["source_root"])
            if marker is not None and not marker.get("holds_images")
            else self.root
        )
        self.prepared = marker is not None
        if self.splits and split not in self.splits:
            raise DatasetError(
                f"dataset {self.name!r} has no split {split!r}; splits: {list(self.splits)}"
            )
        self.split = split
        self.on_error = on_error
        self.unknown_as_ignore = unknown_as_ignore
        if isinstance(taxonomy, Taxonomy):
            self.taxonomy = taxonomy
        else:
            self.taxonomy = load_taxonomy(taxonomy or self.default_taxonomy())
        self.skipped: list[SkipRecord] = []
        self.pairs: list[FilePair] = [self._with_key(p) for p in self.list_pairs()]
        if not self.pairs:
            why = (
                f" ({len(self.skipped)} images skipped: {self.skipped[0].problem})"
                if self.skipped
                else ""
            )
            raise DatasetError(
                f"{self.root}: split {split!r} of dataset {self.name!r} has no usable images{why}"
            )

    # ------------------------------------------------------------------ to implement
    def list_pairs(self) -> list[FilePair]:
        """All (image, label) pairs of the split, sorted, as paths. Report images whose
        label file is missing through :meth:`missing_label` (raises or records)."""
        raise NotImplementedError

    def default_taxonomy(self) -> str | Path:
        """Taxonomy used when none is given: :attr:`taxonomy_name` (the generic folder
        reader overrides this with the root's ``taxonomy.yaml``)."""
        return self.taxonomy_name

    @classmethod
    def available_splits(cls, root: str | Path | None) -> tuple[str, ...]:
        """Split names present for ``root`` (default: the published :attr:`splits`)."""
        return cls.splits

    # ------------------------------------------------------------------ reading
    def _with_key(self, pair: FilePair) -> FilePair:
        if not pair.key:
            base = self.root if pair.image.is_relative_to(self.root) else self.source_root
            rel = pair.image.relative_to(base)
            pair.key = rel.with_suffix("").as_posix()
        return pair

    def __len__(self) -> int:
        return len(self.pairs)

    def read_label(self, path: Path) -> np.ndarray:
        """``(H, W)`` int32 raw ids; colour-coded files go through the taxonomy palette.

        Raises:
            SampleError: unreadable file, or colours outside the palette (unless
                ``unknown_as_ignore``).
        """
        if self.taxonomy.label_format == "color":
            rgb = read_label_rgb(path)
            try:
                return self.taxonomy.colors_to_ids(rgb, unknown_as_ignore=self.unknown_as_ignore)
            except ValueError as exc:
                raise SampleError(path, UNKNOWN_LABEL, str(exc)) from None
        return read_label_png(path)

    def load(self, index: int) -> Sample:
        """Read and validate one sample.

        Raises:
            SampleError: any problem with either file, naming it.
        """
        pair = self.pairs[index]
        image = read_image(pair.image)
        label = None
        if pair.label is not None:
            label = self.read_label(pair.label)
            if label.shape != image.shape[:2]:
                raise SampleError(
                    pair.label,
                    SIZE_MISMATCH,
                    f"label size {label.shape[1]}x{label.shape[0]} differs from "
                    f"image {pair.image} size {image.shape[1]}x{image.shape[0]}",
                )
            bad = self.taxonomy.unknown_ids(label)
            if bad:
                if not self.unknown_as_ignore:
                    raise SampleError(
                        pair.label,
                        UNKNOWN_LABEL,
                        f"label ids {bad[:10]} are not in taxonomy {self.taxonomy.name!r}",
                    )
                fill = self.taxonomy.ignore_ids[0] if self.taxonomy.ignore_ids else IGNORE_INDEX
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
                kind = exc.kind if isinstance(exc, SampleError) else OTHER_PROBLEM
                logger.debug("skipping %s", exc)
                self.skipped.append(SkipRecord(str(self.pairs[i].image), str(exc), kind))


@dataclass
class DatasetInfo:
    """Summary of a reader for listings."""

    name: str
    taxonomy: str
    splits: tuple[str, ...] = field(default_factory=tuple)
    unlabelled_splits: tuple[str, ...] = field(default_factory=tuple)
    layout: str = ""
    #: ``"required"`` (read only after ``datasets prepare``), ``"optional"`` (prepare
    #: makes reading faster) or ``""`` (no prepare step).
    prepare: str = ""
