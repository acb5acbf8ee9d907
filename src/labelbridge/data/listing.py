"""Finding a dataset's files: its root, a prepared folder's marker, folder walks, and
the pairing of images with their label files.

Images without a label file are reported through
:meth:`PairListing.missing_label`: raised as a :class:`~labelbridge.data.samples.SampleError`,
or under ``on_error="skip"`` recorded in ``skipped`` and dropped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from labelbridge.constants import DATA_ROOT_ENV
from labelbridge.data.samples import MISSING_LABEL, FilePair, OnError, SampleError, SkipRecord
from labelbridge.errors import DatasetError, SplitAbsent

logger = logging.getLogger(__name__)

#: Marker file of a folder written by ``labelbridge datasets prepare`` (see
#: :mod:`labelbridge.data.prepare`): which dataset, prepared from which source root.
PREPARED_FILE = "prepared.json"
#: ``what`` of :meth:`PairListing.require_dir` whose absence means the split was
#: not downloaded (:class:`~labelbridge.errors.SplitAbsent`), not that it is broken.
SPLIT_FOLDERS = ("image", "split")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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


class PairListing:
    """Listing helpers of :class:`~labelbridge.data.base.SegmentationDataset` (the reader
    sets the attributes below); a reader's :meth:`list_pairs` builds on them."""

    name: ClassVar[str]
    layout: ClassVar[str]
    release_folder: ClassVar[str]
    unlabelled_splits: ClassVar[tuple[str, ...]]
    root: Path
    split: str
    on_error: OnError
    skipped: list[SkipRecord]

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
        expected: list[tuple[Path, Path | None]] = []
        for img in sorted(candidates):
            suffix = next((s for s in suffixes if img.name.endswith(s)), None)
            if suffix is None:  # a folder named like an image is kept: reading reports it
                continue
            if label_dir is None:
                expected.append((img, None))
                continue
            rel = img.relative_to(image_dir)
            expected.append(
                (img, label_dir / rel.parent / f"{rel.name[: -len(suffix)]}{label_suffix}")
            )
        return self.pairs_of(expected)

    def pairs_of(self, expected: Iterable[tuple[Path, Path | None]]) -> list[FilePair]:
        """Pairs of images and the label files they are expected to have (``None``: an
        unlabelled split), in the given order; an expected label that does not exist is
        :meth:`missing_label`."""
        pairs = []
        for img, lab in expected:
            if lab is None or lab.exists():
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
            (e.g. :meth:`PairListing.missing_label`); default: raise.

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
