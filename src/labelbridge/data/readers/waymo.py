"""Waymo Open Dataset v2 camera (2D) panoptic segmentation, read after ``datasets prepare``.

Published layout (Waymo Open Dataset v2, ``waymo_open_dataset_v_2_0_*`` buckets; the
``{dataset_dir}/{component}/{context_name}.parquet`` naming is the one of
``tutorial/tutorial_v2.ipynb`` in waymo-research/waymo-open-dataset)::

    <root>/{training,validation,testing}/camera_image/<context_name>.parquet
    <root>/{training,validation}/camera_segmentation/<context_name>.parquet

Columns (``src/waymo_open_dataset/v2/perception/camera_image.py``, ``segmentation.py``
and their ``*_test.py`` schemas, waymo-research/waymo-open-dataset at
``99a4cb3ff07e2fe06c2ce73da001f850f628e45a``), both files keyed by
``key.segment_context_name`` (string), ``key.frame_timestamp_micros`` (int64),
``key.camera_name`` (int8, 1..5 = FRONT, FRONT_LEFT, FRONT_RIGHT, SIDE_LEFT, SIDE_RIGHT):

- ``[CameraImageComponent].image``: binary, the JPEG as recorded;
- ``[CameraSegmentationLabelComponent].panoptic_label_divisor``: int32;
- ``[CameraSegmentationLabelComponent].panoptic_label``: binary, a uint16 PNG of the
  camera image's size holding ``semantic_class_id * divisor + instance_id``
  (``dataset.proto`` CameraSegmentationLabel; the toolkit's examples use divisor 1000);
- instance-to-global id mapping, ``sequence_id`` and ``num_cameras_covered`` (not read).

Only a subset of the frames has segmentation labels; camera images without a label row
are left out (counted and logged by :meth:`WaymoPreparer.tasks`).

Prepared layout (this module's :class:`WaymoPreparer`; the images are copied, so the
published root is not needed afterwards)::

    <out>/<split>/images/<context>_<timestamp_micros>_<camera>.jpg   JPEG bytes as stored
    <out>/<split>/semantic/<same stem>.png                           uint8 semantic ids

Semantic ids (taxonomy ``waymo2d``, ``camera_segmentation.proto`` 0..28) are
``panoptic_label // panoptic_label_divisor``, as
``camera_segmentation_utils.decode_semantic_and_instance_labels_from_panoptic_label``
computes them. The testing split has no labels and is not prepared. The reference
implementation (UniBwTAS/data-priors ``prepare/prepare_waymo.py``) writes
``images/<context>_<camera>_<ts>.png`` and uint16 panoptic labels instead.

Not confirmed without the real files: whether the published parquet files carry extra
(e.g. pandas index) columns (only the named columns are read, so extra ones do no harm).

Reading parquet needs ``pyarrow`` (``pip install labelbridge[waymo]``); reading a
prepared folder does not.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from labelbridge.data.base import (
    CORRUPT,
    MISSING_FILE,
    UNKNOWN_LABEL,
    FilePair,
    SampleError,
    SegmentationDataset,
)
from labelbridge.data.prepare import Preparer, PrepareTask, register_preparer
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError, UserError
from labelbridge.files import encode_label_png

logger = logging.getLogger(__name__)

#: Key columns shared by the camera components of the v2 format.
KEY_COLUMNS = ("key.segment_context_name", "key.frame_timestamp_micros", "key.camera_name")
IMAGE_COLUMN = "[CameraImageComponent].image"
DIVISOR_COLUMN = "[CameraSegmentationLabelComponent].panoptic_label_divisor"
PANOPTIC_COLUMN = "[CameraSegmentationLabelComponent].panoptic_label"
#: Component folders of a split.
IMAGE_COMPONENT = "camera_image"
SEGMENTATION_COMPONENT = "camera_segmentation"
#: Labelled splits (the testing split is published without segmentation labels).
LABELLED_SPLITS = ("training", "validation")

Key = tuple[str, int, int]


def _parquet() -> Any:
    """``pyarrow.parquet``, or a clear error when pyarrow is not installed."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(
            "reading the Waymo Open Dataset v2 parquet files needs pyarrow: "
            "pip install labelbridge[waymo]  (or: pip install pyarrow)"
        ) from None
    return pq


def frame_stem(context: str, timestamp: int, camera: int) -> str:
    """File stem of one camera image: ``<context>_<timestamp_micros>_<camera>``."""
    return f"{context}_{int(timestamp)}_{int(camera)}"


def read_columns(
    path: Path, columns: tuple[str, ...], *, timestamps: list[int] | None = None
) -> dict[str, list]:
    """Read only ``columns`` of the parquet file ``path`` as Python lists.

    Args:
        path: a v2 component file.
        columns: column names to read.
        timestamps: keep only rows whose ``key.frame_timestamp_micros`` is one of these.

    Raises:
        DatasetError: missing or unreadable file, or a missing column (named).
    """
    pq = _parquet()
    import pyarrow as pa

    if not path.is_file():
        raise DatasetError(f"{path}: parquet file not found")
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{path}: cannot read parquet file: {exc}") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise DatasetError(f"{path}: parquet file lacks column(s) {missing} of the Waymo v2 schema")
    filters = None if timestamps is None else [(KEY_COLUMNS[1], "in", sorted(set(timestamps)))]
    try:
        table = pq.read_table(path, columns=list(columns), filters=filters)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{path}: cannot read parquet file: {exc}") from None
    return {c: table.column(c).to_pylist() for c in columns}


def _keys(cols: dict[str, list]) -> list[Key]:
    return [
        (str(c), int(t), int(n)) for c, t, n in zip(*(cols[c] for c in KEY_COLUMNS), strict=True)
    ]


def semantic_from_panoptic(png: bytes, divisor: int, *, where: Path, stem: str) -> np.ndarray:
    """Decode a v2 panoptic label PNG and return its semantic ids.

    Args:
        png: the ``panoptic_label`` cell (uint16 PNG bytes).
        divisor: the row's ``panoptic_label_divisor``.
        where: the parquet file (named in errors).
        stem: the frame (named in errors).

    Returns:
        ``(H, W)`` uint8 semantic ids ``panoptic // divisor``.

    Raises:
        SampleError: undecodable PNG, a divisor below 1, or ids above 255.
    """
    if divisor is None or int(divisor) < 1:
        raise SampleError(where, CORRUPT, f"frame {stem}: panoptic_label_divisor is {divisor}")
    try:
        with Image.open(io.BytesIO(png)) as im:
            im.load()
            panoptic = np.asarray(im, dtype=np.int64)
    except (OSError, SyntaxError, ValueError, TypeError) as exc:
        raise SampleError(
            where, CORRUPT, f"frame {stem}: cannot decode panoptic_label PNG: {exc}"
        ) from None
    if panoptic.ndim != 2:
        raise SampleError(
            where, CORRUPT, f"frame {stem}: panoptic_label is not a single-channel image"
        )
    semantic = panoptic // int(divisor)
    if semantic.size and int(semantic.max()) > 255:
        raise SampleError(
            where,
            UNKNOWN_LABEL,
            f"frame {stem}: semantic id {int(semantic.max())} (panoptic // {divisor}) "
            "does not fit the 0..28 classes of waymo2d",
        )
    return semantic.astype(np.uint8)


@register_preparer
class WaymoPreparer(Preparer):
    """One task per (split, context): that context's labelled camera images (JPEG bytes
    copied) and their semantic label PNGs (uint8, ``panoptic // divisor``).

    Attributes:
        unlabelled: split -> number of camera images without a segmentation label
            (left out), filled by :meth:`tasks`.
    """

    name = "waymo"
    splits = LABELLED_SPLITS
    required = True
    holds_images = True

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.unlabelled: dict[str, int] = {}

    def present_splits(self) -> tuple[str, ...]:
        return tuple(s for s in self.splits if (self.root / s).is_dir())

    def tasks(self, split: str) -> list[PrepareTask]:
        """Tasks of ``split``; reads only the key columns of both components.

        Raises:
            DatasetError: no split folder at all under the root, a missing
                ``camera_segmentation`` folder, a context without its ``camera_image``
                file, a label row without an image row, duplicate keys (all named).
        """
        split_dir = self.root / split
        if not split_dir.is_dir():
            if not any((self.root / s).is_dir() for s in self.splits):
                raise DatasetError(
                    f"{self.root}: no Waymo v2 split folder ({', '.join(self.splits)}); "
                    f"expected <root>/<split>/{IMAGE_COMPONENT}/<context>.parquet and "
                    f"<root>/<split>/{SEGMENTATION_COMPONENT}/<context>.parquet"
                )
            logger.warning("%s: split %r not downloaded, nothing to prepare", split_dir, split)
            return []
        seg_dir = split_dir / SEGMENTATION_COMPONENT
        if not seg_dir.is_dir():
            raise DatasetError(
                f"{seg_dir}: camera_segmentation folder of Waymo v2 split {split!r} not found "
                f"(expected {SEGMENTATION_COMPONENT}/<context>.parquet)"
            )
        tasks, unlabelled, total = [], 0, 0
        for seg_path in sorted(seg_dir.glob("*.parquet")):
            context = seg_path.stem
            image_path = split_dir / IMAGE_COMPONENT / seg_path.name
            if not image_path.is_file():
                raise DatasetError(
                    f"{image_path}: camera_image file of context {context!r} not found "
                    f"(its labels are in {seg_path})"
                )
            labelled = _keys(read_columns(seg_path, KEY_COLUMNS))
            if len(set(labelled)) != len(labelled):
                dup = next(k for k in labelled if labelled.count(k) > 1)
                raise DatasetError(f"{seg_path}: duplicate label rows for key {dup}")
            images = set(_keys(read_columns(image_path, KEY_COLUMNS)))
            lonely = [k for k in labelled if k not in images]
            if lonely:
                raise DatasetError(
                    f"{image_path}: no camera image row for labelled key(s) {sorted(lonely)[:3]}"
                    f" of {seg_path}"
                )
            total += len(images)
            unlabelled += len(images) - len(labelled)
            if not labelled:
                continue
            outputs: list[str] = []
            for key in sorted(labelled, key=lambda k: (k[1], k[2], k[0])):
                stem = frame_stem(*key)
                outputs += [f"{split}/images/{stem}.jpg", f"{split}/semantic/{stem}.png"]
            tasks.append(
                PrepareTask(
                    key=f"{split}/{context}",
                    outputs=tuple(outputs),
                    source=(str(image_path), str(seg_path), split),
                )
            )
        # contexts published without any segmentation file: all their images unlabelled
        for image_path in sorted((split_dir / IMAGE_COMPONENT).glob("*.parquet")):
            if (seg_dir / image_path.name).is_file():
                continue
            count = len(read_columns(image_path, KEY_COLUMNS[:1])[KEY_COLUMNS[0]])
            total += count
            unlabelled += count
        self.unlabelled[split] = unlabelled
        self.note(
            split,
            f"{len(tasks)} contexts with labels; {unlabelled} of {total} camera images have no "
            "segmentation label and are left out",
        )
        return tasks

    def convert(self, task: PrepareTask) -> dict[str, bytes]:
        """Join the context's labels with its images and encode them.

        Raises:
            SampleError: a missing image row, an undecodable panoptic label, a bad
                divisor (named by parquet file and frame).
            DatasetError: unreadable parquet files or missing columns (named).
        """
        image_name, seg_name, split = task.source
        image_path, seg_path = Path(image_name), Path(seg_name)
        labels = read_columns(seg_path, (*KEY_COLUMNS, DIVISOR_COLUMN, PANOPTIC_COLUMN))
        keys = _keys(labels)
        images_cols = read_columns(
            image_path, (*KEY_COLUMNS, IMAGE_COLUMN), timestamps=[k[1] for k in keys]
        )
        images = dict(zip(_keys(images_cols), images_cols[IMAGE_COLUMN], strict=True))
        files: dict[str, bytes] = {}
        for key, divisor, png in zip(
            keys, labels[DIVISOR_COLUMN], labels[PANOPTIC_COLUMN], strict=True
        ):
            stem = frame_stem(*key)
            jpeg = images.get(key)
            if jpeg is None:
                raise SampleError(image_path, MISSING_FILE, f"no camera image row for {stem}")
            if png is None:
                raise SampleError(seg_path, CORRUPT, f"frame {stem}: panoptic_label is empty")
            semantic = semantic_from_panoptic(png, divisor, where=seg_path, stem=stem)
            files[f"{split}/images/{stem}.jpg"] = bytes(jpeg)
            files[f"{split}/semantic/{stem}.png"] = encode_label_png(semantic)
        return files


@register_dataset
class Waymo(SegmentationDataset):
    """Prepared Waymo v2 camera segmentation (see the module docstring)."""

    name = "waymo"
    taxonomy_name = "waymo2d"
    splits = LABELLED_SPLITS
    layout = (
        "prepared by `labelbridge datasets prepare waymo`: {split}/images/"
        "<context>_<ts>_<camera>.jpg + {split}/semantic/<same>.png (uint8 semantic ids)"
    )

    def list_pairs(self) -> list[FilePair]:
        split_dir = self.root / self.split
        published = any((split_dir / c).is_dir() for c in (IMAGE_COMPONENT, SEGMENTATION_COMPONENT))
        if not self.prepared and published:
            raise DatasetError(
                f"{self.root}: this is the published Waymo v2 parquet layout, which must be "
                f"converted first: labelbridge datasets prepare waymo --root {self.root} "
                "--out DIR, then pass --root DIR"
            )
        hint = (
            ""
            if self.prepared
            else " (run `labelbridge datasets prepare waymo --root <published> --out DIR` "
            "and pass DIR as root)"
        )
        for sub, what in (("images", "image"), ("semantic", "label")):
            if not (split_dir / sub).is_dir():
                raise DatasetError(
                    f"{split_dir / sub}: {what} folder of 'waymo' split {self.split!r} not "
                    f"found{hint}; expected layout: {self.layout}"
                )
        return self.pairs_by_suffix(
            split_dir / "images",
            split_dir / "semantic",
            image_suffix=".jpg",
            label_suffix=".png",
            recursive=False,
        )
