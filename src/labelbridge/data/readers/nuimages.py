"""nuImages (Caesar et al., nuScenes devkit) semantic labels, made once by ``datasets prepare``.

Published layout (nuscenes-devkit ``docs/schema_nuimages.md``, ``python-sdk/nuimages/
nuimages.py``, the nuImages tutorial; read at devkit commit ``d9de17a``, 2025-08-28)::

    <root>/samples/CAM_*/<name>.jpg            key frames (annotated)
    <root>/sweeps/CAM_*/<name>.jpg             6 past + 6 future frames (never annotated)
    <root>/v1.0-{train,val,test,mini}/         one folder of JSON tables per version:
        category.json      token, name, description
        sample_data.json   token, sample_token, ego_pose_token, calibrated_sensor_token,
                           filename, fileformat, width, height, timestamp, is_key_frame,
                           next, prev
        object_ann.json    token, sample_data_token, category_token, attribute_tokens,
                           bbox, mask
        surface_ann.json   token, sample_data_token, category_token, mask
        sample.json, log.json, sensor.json, calibrated_sensor.json, ego_pose.json,
        attribute.json     (not read)

``mask`` is ``{"size": [h, w], "counts": <base64 of a COCO compressed RLE string>}``
(devkit ``nuimages/utils/utils.py`` ``mask_decode``: ``base64.b64decode(counts)`` handed
to ``pycocotools.mask.decode``) or ``null``. The test version's ``object_ann.json`` and
``surface_ann.json`` are empty (devkit ``tests/test_foreign_keys.py`` skips them), so
``v1.0-test`` is an unlabelled split.

**Semantic label** of a key frame: the devkit's ``NuImages.get_segmentation`` rule. An
``(H, W)`` map starts at 0 (background); the frame's surface masks are drawn in table
order, then its object masks sorted by annotation ``token``; each drawn mask overwrites
what is under it (objects therefore cover surfaces; no depth ordering); annotations with
``mask: null`` are skipped. Class values are the devkit's ``name_to_index_mapping``: 0
background, the 23 object categories sorted by name 1..23, ``flat.driveable_surface``
24, ``vehicle.ego`` 31, i.e. the ids of taxonomy ``nuimages`` (looked up by category
name here; a category name outside the taxonomy stops the preparation).

**No devkit dependency.** ``nuscenes-devkit`` pulls pycocotools, OpenCV, Shapely,
matplotlib; only the RLE decoding is needed, so :func:`rle_counts_from_string` reads
the compressed string as pycocotools ``common/maskApi.c`` ``rleFrString`` does (6-bit
characters offset by 48, 5 payload bits per character, 0x20 = another character
follows, 0x10 in the last character = negative (sign-extended); from the fourth count
on, the value is a delta to the count two places back) and :func:`decode_mask` expands
the alternating runs (zeros first) in column-major (Fortran) order. The tests
cross-check it against pycocotools when that is installed.

Prepared folder (``labelbridge datasets prepare nuimages --root <root> --out <dir>``;
one task per key-frame ``sample_data`` plus one list per version; workers get only the
frame's size and masks, never the tables)::

    <dir>/prepared.json
    <dir>/semantic/<version>/samples/CAM_*/<name>.png   mode L, taxonomy nuimages ids
    <dir>/lists/<version>.txt    the version's key-frame image paths (relative to the
                                 source root), one a line, sorted; written last

Splits are the version names ``v1.0-train``, ``v1.0-val``, ``v1.0-test`` (images only)
and ``v1.0-mini``; versions whose table folder is absent are left out. The reader takes
the prepared folder as root and the images from its source root; given the published
root it stops and names the prepare command. Image size is taken from
``sample_data`` ``width``/``height`` (the devkit opens the image); a mask whose ``size``
differs is reported. Not confirmed without the real files: that every released mask
uses compressed (string) counts, as the devkit's decoding assumes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from labelbridge.data.base import (
    CORRUPT,
    PREPARED_FILE,
    SIZE_MISMATCH,
    FilePair,
    SampleError,
    SegmentationDataset,
    resolve_root,
)
from labelbridge.data.prepare import Preparer, PrepareTask, register_preparer
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError
from labelbridge.files import encode_label_png

logger = logging.getLogger(__name__)

#: Published versions (table folders), in the order splits are listed.
VERSIONS = ("v1.0-train", "v1.0-val", "v1.0-test", "v1.0-mini")
#: Versions published without annotations.
UNLABELLED_VERSIONS = ("v1.0-test",)
#: Prepared-folder sub-folders: label PNGs and per-version image lists.
LABEL_DIR = "semantic"
LIST_DIR = "lists"
TAXONOMY = "nuimages"
LAYOUT = (
    "prepared: lists/<version>.txt + semantic/<version>/samples/CAM_*/<name>.png "
    "(datasets prepare nuimages); images <source root>/samples/CAM_*/<name>.jpg"
)


# ---------------------------------------------------------------------------- RLE
def rle_counts_from_string(s: bytes | str) -> np.ndarray:
    """Run lengths of a COCO compressed RLE string (pycocotools ``rleFrString``).

    Args:
        s: the compressed string (characters ``'0'..'o'``), e.g. ``b"0Q12PO2"``.

    Returns:
        ``(m,)`` int64 run lengths, zeros first, alternating.

    Raises:
        ValueError: a character outside the alphabet, a string ending inside a value,
            or a negative run length.
    """
    data = s.encode("ascii") if isinstance(s, str) else bytes(s)
    counts: list[int] = []
    p, n = 0, len(data)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError("RLE string ends inside a value")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"byte {data[p]!r} at {p} is not an RLE character")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x -= 1 << (5 * k)  # sign-extend the k*5-bit value
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise ValueError(f"negative run length {x} (run {len(counts)})")
        counts.append(x)
    return np.asarray(counts, dtype=np.int64)


def decode_mask(mask: dict[str, Any]) -> np.ndarray:
    """Decode a nuImages mask ``{"size": [h, w], "counts": base64 RLE string}``.

    Returns:
        ``(h, w)`` uint8, 1 inside the mask, 0 outside.

    Raises:
        ValueError: malformed record, bad base64 or RLE, or run lengths that do not sum
            to ``h * w``.
    """
    try:
        h, w = (int(v) for v in mask["size"])
        raw = base64.b64decode(mask["counts"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError(f"not a {{size: [h, w], counts: base64}} mask: {exc}") from None
    counts = rle_counts_from_string(raw)
    if h < 0 or w < 0 or int(counts.sum()) != h * w:
        raise ValueError(f"run lengths sum to {int(counts.sum())}, not {h}x{w} = {h * w}")
    values = (np.arange(len(counts)) % 2).astype(np.uint8)
    flat = np.repeat(values, counts)
    return flat.reshape(w, h).T.copy()  # column-major runs


# ---------------------------------------------------------------------------- prepare
@dataclass(frozen=True)
class _Mask:
    """One annotation's mask to draw: class value, and where it came from (messages)."""

    value: int
    table: str  # path of the JSON table
    token: str
    mask: dict[str, Any]


@dataclass(frozen=True)
class _Frame:
    """What converting one key frame needs (travels to the workers)."""

    filename: str
    width: int
    height: int
    masks: tuple[_Mask, ...]


def _load_table(folder: Path, table: str) -> list[dict[str, Any]]:
    path = folder / f"{table}.json"
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: nuImages table not found") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable nuImages table: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"{path}: expected a JSON list of records")
    return rows


def _field(path: Path, index: int, row: dict[str, Any], name: str) -> Any:
    try:
        return row[name]
    except KeyError:
        raise DatasetError(f"{path}: record {index} has no field {name!r}") from None


def _relative_file(path: Path, index: int, filename: Any) -> PurePosixPath:
    rel = PurePosixPath(str(filename))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise DatasetError(f"{path}: record {index} has filename {filename!r}, not a relative path")
    return rel


def present_versions(root: Path) -> tuple[str, ...]:
    """The versions whose table folder exists under a published root."""
    return tuple(v for v in VERSIONS if (root / v).is_dir())


@register_preparer
class NuImagesPreparer(Preparer):
    """Semantic label PNGs from the nuImages tables (see the module docstring)."""

    name = "nuimages"
    splits = VERSIONS
    required = True
    holds_images = False

    def present_splits(self) -> tuple[str, ...]:
        if not present_versions(self.root):
            self.tasks(self.splits[0])  # raises the message naming the expected layout
        return present_versions(self.root)

    def tasks(self, split: str) -> list[PrepareTask]:
        folder = self.root / split
        if not folder.is_dir():
            if not present_versions(self.root):
                raise DatasetError(
                    f"{self.root}: no nuImages table folder ({', '.join(VERSIONS)}) found; "
                    "expected <root>/samples/CAM_*/*.jpg and <root>/v1.0-<version>/*.json"
                )
            logger.info("nuimages: %s has no %s/ folder; nothing to prepare", self.root, split)
            return []
        sd_path = folder / "sample_data.json"
        frames = []
        for i, sd in enumerate(_load_table(folder, "sample_data")):
            if not _field(sd_path, i, sd, "is_key_frame"):
                continue  # sweeps are not annotated
            rel = _relative_file(sd_path, i, _field(sd_path, i, sd, "filename"))
            frames.append((rel, sd, i))
        frames.sort(key=lambda f: f[0].as_posix())
        listing = "".join(f"{rel.as_posix()}\n" for rel, _, _ in frames).encode()
        list_task = PrepareTask(f"{split} image list", (f"{LIST_DIR}/{split}.txt",), listing)
        if split in UNLABELLED_VERSIONS:
            return [list_task]
        by_frame = self._masks_by_frame(folder)
        tasks = []
        for rel, sd, i in frames:
            token = _field(sd_path, i, sd, "token")
            try:
                width, height = int(sd["width"]), int(sd["height"])
            except (KeyError, TypeError, ValueError):
                raise DatasetError(f"{sd_path}: record {i} has no integer width/height") from None
            out = f"{LABEL_DIR}/{split}/{rel.with_suffix('.png').as_posix()}"
            frame = _Frame(rel.as_posix(), width, height, tuple(by_frame.get(token, ())))
            tasks.append(PrepareTask(rel.as_posix(), (out,), frame))
        tasks.append(list_task)  # last: a listed version has had all its frames converted
        return tasks

    def _masks_by_frame(self, folder: Path) -> dict[str, list[_Mask]]:
        """sample_data token -> masks in drawing order: surfaces in table order, then
        objects sorted by token (devkit ``get_segmentation``)."""
        from labelbridge.taxonomy import load_taxonomy

        ids = {c.name: c.id for c in load_taxonomy(TAXONOMY).classes}
        cat_path = folder / "category.json"
        values = {}
        for i, cat in enumerate(_load_table(folder, "category")):
            name = _field(cat_path, i, cat, "name")
            if name not in ids:
                raise DatasetError(
                    f"{cat_path}: category {name!r} is not a class of taxonomy {TAXONOMY!r} "
                    "(devkit name_to_index_mapping has 23 object categories, "
                    "flat.driveable_surface and vehicle.ego)"
                )
            values[_field(cat_path, i, cat, "token")] = ids[name]
        by_frame: dict[str, list[_Mask]] = {}
        for table in ("surface_ann", "object_ann"):
            path = folder / f"{table}.json"
            rows = []
            for i, ann in enumerate(_load_table(folder, table)):
                token = _field(path, i, ann, "token")
                cat = _field(path, i, ann, "category_token")
                mask = _field(path, i, ann, "mask")
                if mask is None:
                    continue  # the devkit skips annotations without a mask
                if cat not in values:
                    raise DatasetError(
                        f"{path}: record {i} (token {token}) has category_token {cat!r}, "
                        f"which is not in {cat_path}"
                    )
                if not isinstance(mask, dict):
                    raise DatasetError(f"{path}: record {i} (token {token}): mask is not a mapping")
                frame = _field(path, i, ann, "sample_data_token")
                rows.append((str(token), frame, _Mask(values[cat], str(path), str(token), mask)))
            if table == "object_ann":
                rows.sort(key=lambda r: r[0])
            for _, frame, m in rows:
                by_frame.setdefault(frame, []).append(m)
        return by_frame

    def convert(self, task: PrepareTask) -> dict[str, bytes]:
        if isinstance(task.source, bytes):  # the version's image list
            return {task.outputs[0]: task.source}
        frame: _Frame = task.source
        label = np.zeros((frame.height, frame.width), dtype=np.uint8)
        for m in frame.masks:
            where = f"mask of annotation {m.token} (image {frame.filename})"
            try:
                bits = decode_mask(m.mask)
            except ValueError as exc:
                raise SampleError(m.table, CORRUPT, f"{where} cannot be decoded: {exc}") from None
            if bits.shape != label.shape:
                raise SampleError(
                    m.table,
                    SIZE_MISMATCH,
                    f"{where} is {bits.shape[1]}x{bits.shape[0]}, the image "
                    f"{frame.width}x{frame.height}",
                )
            label[bits == 1] = m.value
        return {task.outputs[0]: encode_label_png(label)}


# ---------------------------------------------------------------------------- reader
@register_dataset
class NuImages(SegmentationDataset):
    name = "nuimages"
    taxonomy_name = TAXONOMY
    splits = VERSIONS
    unlabelled_splits = UNLABELLED_VERSIONS
    layout = LAYOUT

    @classmethod
    def available_splits(cls, root: str | Path | None) -> tuple[str, ...]:
        folder = resolve_root(root, cls.name)
        if (folder / PREPARED_FILE).is_file():
            return tuple(v for v in VERSIONS if (folder / LIST_DIR / f"{v}.txt").is_file())
        return present_versions(folder)

    def list_pairs(self) -> list[FilePair]:
        if not self.prepared:
            raise DatasetError(
                f"{self.root}: nuImages labels are run-length-encoded masks in JSON tables, "
                "which this reader does not decode while reading; convert them once with "
                f"`labelbridge datasets prepare nuimages --root {self.root} --out DIR` "
                "and pass --root DIR"
            )
        list_path = self.root / LIST_DIR / f"{self.split}.txt"
        if not list_path.is_file():
            raise DatasetError(
                f"{list_path}: split {self.split!r} was not prepared; run `labelbridge "
                f"datasets prepare nuimages --root {self.source_root} --out {self.root} "
                f"--split {self.split}`"
            )
        try:
            lines = [ln.strip() for ln in list_path.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{list_path}: unreadable image list: {exc}") from None
        rels = [_relative_file(list_path, i, ln) for i, ln in enumerate(lines) if ln]
        images = [self.source_root / rel for rel in rels]
        if images and not any(p.is_file() for p in images):
            raise DatasetError(
                f"{list_path}: none of the {len(images)} images it lists exist under "
                f"{self.source_root}"
            )
        label_root = self.root / LABEL_DIR / self.split
        pairs = []
        for rel, image in zip(rels, images, strict=True):
            key = rel.with_suffix("").as_posix()
            if not self.has_labels:
                pairs.append(FilePair(image, None, key))
                continue
            label = label_root / rel.with_suffix(".png")
            if label.exists():
                pairs.append(FilePair(image, label, key))
            else:
                self.missing_label(image, label)
        return pairs
