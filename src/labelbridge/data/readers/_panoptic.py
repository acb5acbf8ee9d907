"""Shared decoding of the COCO panoptic format (COCO panoptic, WildDash 2).

Format (cocodataset/panopticapi README and ``panopticapi/utils.py`` ``rgb2id``; the
WildDash scripts' ``pano2sem.py`` decodes WildDash 2 the same way): one JSON file holds
``images`` (``{id, file_name, width, height}``), ``annotations`` (one per image:
``{image_id, file_name, segments_info: [{id, category_id, iscrowd, bbox, area}]}``) and
``categories`` (``{id, name, isthing, color, ...}``); the PNGs named by the annotations'
``file_name`` lie in a folder named like the JSON without ``.json``. Each PNG is RGB and
codes a segment id per pixel as ``R + 256 * G + 256**2 * B``; id 0 is VOID (unlabelled).

The semantic map gives every pixel its segment's ``category_id``, crowd segments
(``iscrowd: 1``) included, as detectron2's and Mask2Former's panoptic-to-semantic
scripts (``prepare_panoptic_fpn.py``, ``prepare_coco_semantic_annos_from_panoptic_annos.py``)
and ``pano2sem.py`` do: they loop over all ``segments_info`` entries without looking at
``iscrowd``. VOID pixels get the taxonomy's unlabelled id. A segment id present in the
PNG but absent from the annotation's ``segments_info`` raises :class:`SampleError` naming
the PNG (``pano2sem.py`` would silently make it 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from labelbridge.data.base import UNKNOWN_LABEL, SampleError, read_label_rgb
from labelbridge.errors import DatasetError

#: Segment id of VOID (unlabelled) pixels in COCO panoptic PNGs.
VOID_SEGMENT = 0


def rgb_to_segment_ids(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 panoptic PNG pixels -> ``(H, W)`` int64 segment ids
    (``R + 256 * G + 256**2 * B``)."""
    rgb = np.asarray(rgb, dtype=np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def segment_ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_segment_ids`: ``(H, W)`` ids < 2**24 -> ``(H, W, 3)`` uint8."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.stack([ids % 256, (ids // 256) % 256, ids // 65536], axis=-1).astype(np.uint8)


def segments_to_semantic(
    segment_ids: np.ndarray,
    segments: dict[int, int],
    png: Path,
    *,
    void_id: int = 0,
    table: str | Path = "segments_info",
) -> np.ndarray:
    """Segment-id map -> ``(H, W)`` int32 category ids.

    Args:
        segment_ids: ``(H, W)`` segment ids (see :func:`rgb_to_segment_ids`).
        segments: segment id -> category id (the annotation's ``segments_info``).
        png: the panoptic PNG (named in errors).
        void_id: id given to VOID pixels (segment id 0) unless ``segments`` lists id 0.
        table: where ``segments`` came from (named in errors).

    Raises:
        SampleError: kind ``unknown_label``: a segment id of the PNG is not in
            ``segments`` (names the PNG and the ids).
    """
    uniq, inverse = np.unique(segment_ids, return_inverse=True)
    lookup = np.empty(len(uniq), dtype=np.int64)
    missing = []
    for i, sid in enumerate(uniq.tolist()):
        if sid in segments:
            lookup[i] = segments[sid]
        elif sid == VOID_SEGMENT:
            lookup[i] = void_id
        else:
            missing.append(sid)
    if missing:
        raise SampleError(
            png,
            UNKNOWN_LABEL,
            f"panoptic segment ids {missing[:10]} of this PNG have no entry in its "
            f"segments_info ({table})",
        )
    return lookup[inverse.reshape(segment_ids.shape)].astype(np.int32)


def decode_panoptic_png(
    png: Path, segments: dict[int, int] | None, *, void_id: int = 0, table: str | Path = ""
) -> np.ndarray:
    """Read a panoptic PNG and map it to ``(H, W)`` int32 category ids.

    Args:
        png: the RGB panoptic PNG.
        segments: its segment table (segment id -> category id), or ``None`` when the
            JSON has no annotation for it.
        void_id: id of VOID pixels.
        table: the JSON file (named in errors).

    Raises:
        SampleError: missing/unreadable/corrupt PNG, no annotation, or a segment id
            without an entry (all naming the PNG).
    """
    if segments is None:
        raise SampleError(png, UNKNOWN_LABEL, f"this panoptic PNG has no annotation in {table}")
    rgb = read_label_rgb(png)
    return segments_to_semantic(
        rgb_to_segment_ids(rgb), segments, png, void_id=void_id, table=table
    )


@dataclass
class PanopticTable:
    """The parts of a COCO-panoptic JSON a reader needs.

    Attributes:
        path: the JSON file.
        by_png: annotation ``file_name`` (PNG name) -> {segment id: category id}.
        png_by_image: image ``file_name`` -> annotation ``file_name`` (PNG name).
    """

    path: Path
    by_png: dict[str, dict[int, int]]
    png_by_image: dict[str, str]


def load_panoptic_json(path: Path) -> PanopticTable:
    """Parse a COCO-panoptic JSON file.

    Raises:
        DatasetError: the file is missing, not JSON, or lacks the panoptic keys (named).
    """
    try:
        data: Any = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: panoptic JSON file not found") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read panoptic JSON: {exc}") from None
    try:
        images = {img["id"]: str(img["file_name"]) for img in data["images"]}
        by_png: dict[str, dict[int, int]] = {}
        png_by_image: dict[str, str] = {}
        for ann in data["annotations"]:
            png = str(ann["file_name"])
            by_png[png] = {int(s["id"]): int(s["category_id"]) for s in ann["segments_info"]}
            image_name = images.get(ann["image_id"])
            if image_name is not None:
                png_by_image[image_name] = png
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(
            f"{path}: not a COCO panoptic JSON (needs images[{{id, file_name}}] and "
            f"annotations[{{image_id, file_name, segments_info[{{id, category_id}}]}}]): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return PanopticTable(Path(path), by_png, png_by_image)


def semantic_png_bytes(semantic: np.ndarray, png: Path) -> bytes:
    """``(H, W)`` int32 category ids -> deterministic mode-L PNG bytes.

    Raises:
        SampleError: an id outside 0..255 (cannot be stored in uint8), naming ``png``.
    """
    from labelbridge.files import encode_label_png

    if semantic.size and (semantic.min() < 0 or semantic.max() > 255):
        bad = sorted({int(v) for v in np.unique(semantic) if v < 0 or v > 255})
        raise SampleError(
            png, UNKNOWN_LABEL, f"category ids {bad[:10]} do not fit a uint8 semantic PNG"
        )
    return encode_label_png(semantic.astype(np.uint8))


class PanopticLabels:
    """Mixin of readers whose labels are COCO-panoptic PNGs: a reader that found the
    panoptic JSON sets ``_table`` while listing; :meth:`read_label` then decodes each PNG
    through it (``void_id`` for VOID pixels), otherwise reads semantic PNGs as usual."""

    void_id: ClassVar[int] = 0
    _table: PanopticTable | None = None

    def panoptic_labels(
        self, images: list[Path], json_path: Path, png_dir: Path
    ) -> dict[Path, Path]:
        """Load the segment table ``json_path`` (once, while listing) and give each image
        its panoptic PNG in ``png_dir`` (the table's ``file_name``, else ``<stem>.png``)."""
        self._table = load_panoptic_json(json_path)
        by_image = self._table.png_by_image
        return {img: png_dir / by_image.get(img.name, f"{img.stem}.png") for img in images}

    def read_label(self, path: Path) -> np.ndarray:
        """``(H, W)`` int32 category ids (``void_id`` where unlabelled).

        Raises:
            SampleError: unreadable PNG, no annotation for it, or a segment id without an
                entry in ``segments_info`` (naming the PNG).
        """
        if self._table is None:
            return super().read_label(path)  # type: ignore[misc]
        return decode_panoptic_png(
            path, self._table.by_png.get(path.name), void_id=self.void_id, table=self._table.path
        )
