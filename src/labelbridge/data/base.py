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
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from PIL import Image

from labelbridge.constants import DATA_ROOT_ENV, IGNORE_INDEX
from labelbridge.errors import DatasetError, SplitAbsent
from labelbridge.taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
#: Marker file of a folder written by ``labelbridge datasets prepare`` (see
#: :mod:`labelbridge.data.prepare`): which dataset, prepared from which source root.
PREPARED_FILE = "prepared.json"
#: ``what`` of :meth:`SegmentationDataset.require_dir` whose absence means the split was
#: not downloaded (:class:`~labelbridge.errors.SplitAbsent`), not that it is broken.
SPLIT_FOLDERS = ("image", "split")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

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


def _open_error(path: Path, what: str, exc: BaseException) -> SampleError:
    """Translate an exception from opening/decoding ``path`` into a :class:`SampleError`."""
    if isinstance(exc, FileNotFoundError):
        return SampleError(path, MISSING_FILE, f"{what} file not found")
    if isinstance(exc, IsADirectoryError) or Path(path).is_dir():
        return SampleError(path, UNREADABLE, f"cannot read {what} file: it is a directory")
    if isinstance(exc, PermissionError):
        return SampleError(path, UNREADABLE, f"cannot read {what} file: permission denied")
    return SampleError(path, CORRUPT, f"cannot decode {what} file (truncated or corrupt?): {exc}")


def read_image(path: Path) -> np.ndarray:
    """Read an RGB image as ``(H, W, 3)`` uint8 (grey and palette images are converted).

    Raises:
        SampleError: missing, unreadable, truncated or corrupt file (named).
    """
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError) as exc:
        raise _open_error(Path(path), "image", exc) from None


def read_image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header only (no pixel decoding).

    Raises:
        SampleError: missing, unreadable, or not an image.
    """
    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (OSError, SyntaxError, ValueError) as exc:
        raise _open_error(Path(path), "image", exc) from None


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
    try:
        with Image.open(path) as im:
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
                return grey_alpha[..., 0].astype(np.int32)
            arr = np.asarray(im, dtype=np.int32)
            if arr.ndim != 2:
                raise SampleError(
                    path, UNKNOWN_LABEL, f"label file has mode {im.mode}; expected one id channel"
                )
            return arr.copy()
    except SampleError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise _open_error(Path(path), "label", exc) from None


def read_label_rgb(path: Path) -> np.ndarray:
    """Read a colour-coded label image as ``(H, W, 3)`` uint8.

    Raises:
        SampleError: missing, unreadable, truncated or corrupt file.
    """
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError) as exc:
        raise _open_error(Path(path), "label", exc) from None


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


def prepared_marker(root: Path) -> dict | None:
    """The contents of ``root``'s :data:`PREPARED_FILE`, or ``None`` when ``root`` is not
    a prepared folder.

    Raises:
        DatasetError: the marker is unreadable or its source root does not exist.
    """
    path = root / PREPARED_FILE
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
        source = Path(marker["source_root"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: unreadable prepared-folder marker: {exc}") from None
    if not marker.get("holds_images") and not source.is_dir():
        raise DatasetError(
            f"{path}: this folder was prepared from {source}, which is gone; the images are "
            "read from there (pass --root of a folder prepared from the present copy)"
        )
    return marker


def walk_files(folder: Path) -> list[Path]:
    """Every entry under ``folder`` (files and sub-folders, as ``Path.rglob`` gives them),
    sorted, following symlinked sub-folders (a dataset assembled from links is read
    whole); a link back into a folder already visited is not followed again. Callers
    filter by name, so a folder named like an image is kept and reported when read."""
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        found.extend(Path(dirpath) / name for name in (*dirnames, *filenames))
    return sorted(found)


MissingLabelHandler = Callable[[Path, Path | None], None]


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

    # ------------------------------------------------------------------ listing helpers
    @property
    def release_dir(self) -> Path:
        """The root, or ``<root>/<release_folder>`` when the root holds that folder and not
        the split's own folder (users pass either the unpacked folder or its parent)."""
        if self.release_folder:
            sub = self.root / self.release_folder
            if sub.is_dir() and not (self.root / self.split).is_dir():
                return sub
        return self.root

    @property
    def has_labels(self) -> bool:
        """``False`` for splits published without labels."""
        return self.split not in self.unlabelled_splits

    def require_dir(self, path: Path, what: str) -> Path:
        """``path`` if it is a folder.

        Raises:
            SplitAbsent: the split's ``image`` (or whole ``split``) folder is missing.
            DatasetError: another folder (labels) is missing; both name the folder, what it
                should hold, and the layout.
        """
        if not path.is_dir():
            hint = f"; expected layout: {self.layout}" if self.layout else ""
            kind = SplitAbsent if what in SPLIT_FOLDERS else DatasetError
            raise kind(
                f"{path}: {what} folder of {self.name!r} split {self.split!r} not found{hint}"
            )
        return path

    def missing_label(self, image: Path, expected: Path | None) -> None:
        """An image without its label file: raise, or record it under ``on_error="skip"``.

        Raises:
            SampleError: kind ``missing_label``, naming the image and the expected label.
        """
        where = f" (expected {expected})" if expected is not None else ""
        err = SampleError(image, MISSING_LABEL, f"no label file for this image{where}")
        if self.on_error == "raise":
            raise err
        logger.debug("skipping %s", err)
        self.skipped.append(SkipRecord(str(image), str(err), MISSING_LABEL))

    def pairs_by_suffix(
        self,
        image_dir: Path,
        label_dir: Path | None,
        *,
        image_suffix: str | tuple[str, ...],
        label_suffix: str,
        recursive: bool = True,
    ) -> list[FilePair]:
        """Pair ``image_dir/**/<base><image_suffix>`` with ``label_dir/**/<base><label_suffix>``
        (same sub-folder). ``label_dir=None`` lists images only (unlabelled split).

        Args:
            image_dir: folder of the split's images.
            label_dir: folder of the split's labels, or ``None``.
            image_suffix: file name ending(s) of images, e.g. ``"_leftImg8bit.png"``.
            label_suffix: file name ending of labels, e.g. ``"_gtFine_labelIds.png"``.
            recursive: search sub-folders (city / sequence folders).
        """
        suffixes = (image_suffix,) if isinstance(image_suffix, str) else tuple(image_suffix)
        candidates = walk_files(image_dir) if recursive else image_dir.iterdir()
        pairs = []
        for img in sorted(candidates):
            suffix = next((s for s in suffixes if img.name.endswith(s)), None)
            if suffix is None:  # a folder named like an image is kept: reading reports it
                continue
            if label_dir is None:
                pairs.append(FilePair(img, None))
                continue
            rel = img.relative_to(image_dir)
            lab = label_dir / rel.parent / f"{rel.name[: -len(suffix)]}{label_suffix}"
            if lab.exists():
                pairs.append(FilePair(img, lab))
            else:
                self.missing_label(img, lab)
        return pairs

    def pairs_from_list_file(
        self, list_file: Path, *, what: str = "split file", hint: str = ""
    ) -> list[FilePair]:
        """Pairs listed in a text file, one ``<image path> [<label path>]`` per line (blank
        lines skipped), in file order.

        Paths are relative to the root. An absolute path that does not exist (list files
        written on the publisher's machine, e.g. SegNet's ``/SegNet/CamVid/train/x.png``)
        is taken as its longest trailing part that exists under the root. A line with only
        an image path lists an unlabelled image.

        Raises:
            SplitAbsent: the file is missing (naming it and the layout).
            DatasetError: a line has more than two fields (file:line).
        """
        if not list_file.is_file():
            raise SplitAbsent(
                f"{list_file}: {what} not found ({hint + '; ' if hint else ''}"
                f"expected layout: {self.layout})"
            )
        pairs = []
        for lineno, line in enumerate(list_file.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) > 2:
                raise DatasetError(
                    f"{list_file}:{lineno}: expected '<image path> [<label path>]', got "
                    f"{len(fields)} fields"
                )
            image = self._listed_path(fields[0])
            if len(fields) == 1:
                pairs.append(FilePair(image, None))
                continue
            label = self._listed_path(fields[1])
            if label.exists():
                pairs.append(FilePair(image, label))
            else:
                self.missing_label(image, label)
        return pairs

    def _listed_path(self, text: str) -> Path:
        relative = Path(text.lstrip("/"))
        path = self.root / relative
        if path.exists() or not text.startswith("/"):
            return path
        parts = relative.parts
        for start in range(1, len(parts)):
            candidate = self.root.joinpath(*parts[start:])
            if candidate.exists():
                return candidate
        return path

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


def pair_by_stem(
    images: list[Path],
    labels: list[Path],
    *,
    label_dir: Path,
    on_missing: MissingLabelHandler | None = None,
) -> list[FilePair]:
    """Pair images and labels by file stem (any image extension).

    Args:
        images: image files.
        labels: label files.
        label_dir: where labels were looked for (named in messages).
        on_missing: called with ``(image, None)`` for an image without a label
            (e.g. :meth:`SegmentationDataset.missing_label`); default: raise.

    Raises:
        DatasetError: an image without a label (when ``on_missing`` is not given),
            naming both paths.
    """
    by_stem = {p.stem: p for p in labels}
    pairs = []
    for img in sorted(images):
        lab = by_stem.get(img.stem)
        if lab is None:
            if on_missing is None:
                raise SampleError(
                    img, MISSING_LABEL, f"no label file with stem {img.stem!r} in {label_dir}"
                )
            on_missing(img, label_dir / f"{img.stem}.png")
            continue
        pairs.append(FilePair(img, lab))
    return pairs
