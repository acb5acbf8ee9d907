"""A tiny Waymo Open Dataset v2 camera-segmentation release in its published parquet form.

Schema facts (column names and arrow types) are those of the v2 component classes in
waymo-research/waymo-open-dataset at ``99a4cb3ff07e2fe06c2ce73da001f850f628e45a``:
``src/waymo_open_dataset/v2/perception/camera_image_test.py`` (CameraImageComponent
schema) and ``segmentation_test.py`` (CameraSegmentationLabelComponent schema); file
naming ``<root>/<split>/<component>/<context_name>.parquet`` from ``tutorial_v2.ipynb``.
The panoptic label is a uint16 PNG of ``semantic * divisor + instance`` (``dataset.proto``);
divisor 1000 as in the toolkit's tests and ``tutorial_2d_pvps.ipynb`` (a divisor above
2340 could not hold class 28 in uint16).

``make_waymo_published(root)`` writes 3 contexts: two in ``training`` (6 camera images,
4 labelled) and one in ``validation`` (2 images, 1 labelled), plus a ``testing`` context
with images only. ``make_waymo(root)`` writes that to ``<root>_published``, runs
``datasets prepare`` into ``root`` and returns the prepared fixture.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .base import H, LayoutFixture, W, fixture_taxonomy, paint_label

#: The panoptic label divisor written into the fixture.
DIVISOR = 1000
#: Semantic id given instance ids in the fixture (TYPE_CAR).
THING_ID = 2

CONTEXTS = {
    "training": {
        # context -> [(timestamp_micros, camera_name, labelled)]
        "10017090168044687777_6380_000_6400_000": [
            (1550083469645130, 1, True),
            (1550083469645130, 2, True),
            (1550083470045260, 1, True),
            (1550083470045260, 2, False),
        ],
        "10023947602400723454_1120_000_1140_000": [
            (1552440195362591, 1, True),
            (1552440195362591, 4, False),
        ],
    },
    "validation": {
        "10203656353524179475_7625_000_7645_000": [
            (1522688014970187, 3, True),
            (1522688014970187, 5, False),
        ],
    },
    "testing": {
        "10084636266401282188_1120_000_1140_000": [(1557240255562407, 1, False)],
    },
}


def _pyarrow():
    return pytest.importorskip(
        "pyarrow", reason="pyarrow is not installed (pip install labelbridge[waymo])"
    )


def image_schema():
    """Arrow schema of a v2 ``camera_image`` file (camera_image_test.py)."""
    pa = _pyarrow()
    p = "[CameraImageComponent]"
    return pa.schema(
        [
            ("key.segment_context_name", pa.string()),
            ("key.frame_timestamp_micros", pa.int64()),
            ("key.camera_name", pa.int8()),
            (f"{p}.image", pa.binary()),
            (f"{p}.pose.transform", pa.list_(pa.float64(), 16)),
            (f"{p}.velocity.linear_velocity.x", pa.float32()),
            (f"{p}.velocity.linear_velocity.y", pa.float32()),
            (f"{p}.velocity.linear_velocity.z", pa.float32()),
            (f"{p}.velocity.angular_velocity.x", pa.float64()),
            (f"{p}.velocity.angular_velocity.y", pa.float64()),
            (f"{p}.velocity.angular_velocity.z", pa.float64()),
            (f"{p}.pose_timestamp", pa.float64()),
            (f"{p}.rolling_shutter_params.shutter", pa.float64()),
            (f"{p}.rolling_shutter_params.camera_trigger_time", pa.float64()),
            (f"{p}.rolling_shutter_params.camera_readout_done_time", pa.float64()),
        ]
    )


def segmentation_schema():
    """Arrow schema of a v2 ``camera_segmentation`` file (segmentation_test.py)."""
    pa = _pyarrow()
    p = "[CameraSegmentationLabelComponent]"
    m = f"{p}.instance_id_to_global_id_mapping"
    return pa.schema(
        [
            ("key.segment_context_name", pa.string()),
            ("key.frame_timestamp_micros", pa.int64()),
            ("key.camera_name", pa.int8()),
            (f"{p}.panoptic_label_divisor", pa.int32()),
            (f"{p}.panoptic_label", pa.binary()),
            (f"{m}.local_instance_ids", pa.list_(pa.int32())),
            (f"{m}.global_instance_ids", pa.list_(pa.int32())),
            (f"{m}.is_tracked", pa.list_(pa.bool_())),
            (f"{p}.sequence_id", pa.string()),
            (f"{p}.num_cameras_covered", pa.binary()),
        ]
    )


def jpeg_bytes(index: int) -> bytes:
    """An 8x6 random RGB image as JPEG bytes (as the camera_image component stores)."""
    rng = np.random.default_rng(index)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)).save(
        buf, format="JPEG", quality=95
    )
    return buf.getvalue()


def panoptic_of(semantic: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint16 panoptic label: ``semantic * DIVISOR + instance`` with instance
    ids 1, 2 on the left/right half of class ``THING_ID`` and 999 on its first pixel."""
    instance = np.zeros_like(semantic)
    things = semantic == THING_ID
    xx = np.mgrid[0:H, 0:W][1]
    instance[things] = np.where(xx[things] < W // 2, 1, 2)
    first = np.argwhere(things)
    if len(first):
        instance[tuple(first[0])] = 999
    return (semantic.astype(np.int64) * DIVISOR + instance).astype(np.uint16)


def png16(panoptic: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(panoptic.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def png8(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def make_waymo_published(root: Path) -> dict[str, dict]:
    """Write the published v2 layout under ``root``.

    Returns:
        stem (``<context>_<ts>_<camera>``) -> ``{"split", "jpeg", "semantic" (H, W) int32
        or None, "panoptic" (H, W) uint16 or None}`` for every camera image written.
    """
    _pyarrow()
    tax = fixture_taxonomy("waymo2d")
    frames: dict[str, dict] = {}
    index = 0
    for split, contexts in CONTEXTS.items():
        for context, rows in contexts.items():
            images, labels = [], []
            for ts, camera, labelled in rows:
                stem = f"{context}_{ts}_{camera}"
                jpeg = jpeg_bytes(index)
                semantic = paint_label(tax, index) if labelled else None
                panoptic = panoptic_of(semantic) if labelled else None
                frames[stem] = {
                    "split": split,
                    "jpeg": jpeg,
                    "semantic": semantic,
                    "panoptic": panoptic,
                }
                images.append(
                    [context, ts, camera, jpeg, [float(i % 5 == 0) for i in range(16)]]
                    + [0.5, 0.0, 0.0, 0.0, 0.0, 0.01, ts / 1e6, 0.001, ts / 1e6, ts / 1e6 + 0.03]
                )
                if labelled:
                    ids = sorted(int(i) for i in np.unique(panoptic % DIVISOR) if i)
                    labels.append(
                        [context, ts, camera, DIVISOR, png16(panoptic)]
                        + [ids, [100 + i for i in ids], [True] * len(ids)]
                        + [f"{index % 7}123456789", png8(np.ones((H, W)))]
                    )
                index += 1
            _write(root / split / "camera_image" / f"{context}.parquet", image_schema(), images)
            if split != "testing":  # the test split is published without labels
                _write(
                    root / split / "camera_segmentation" / f"{context}.parquet",
                    segmentation_schema(),
                    labels,
                )
    return frames


def _write(path: Path, schema, rows: list[list]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema.names]
    table = pa.table(
        [pa.array(list(col), type=f.type) for col, f in zip(columns, schema, strict=True)],
        schema=schema,
    )
    pq.write_table(table, path)


def make_waymo(root: Path) -> LayoutFixture:
    """Published layout in ``<root>_published``, prepared into ``root``."""
    _pyarrow()
    from labelbridge.data.prepare import prepare_dataset

    published = root.parent / (root.name + "_published")
    frames = make_waymo_published(published)
    prepare_dataset("waymo", published, root, progress=False)
    fx = LayoutFixture("waymo", root, fixture_taxonomy("waymo2d"))
    for stem, frame in frames.items():
        if frame["semantic"] is None:
            continue
        split = frame["split"]
        image = root / split / "images" / f"{stem}.jpg"
        label = root / split / "semantic" / f"{stem}.png"
        key = image.relative_to(root).with_suffix("").as_posix()
        fx.keys.setdefault(split, []).append(key)
        fx.labels[key] = frame["semantic"]
        fx.files[key] = (image, label)
    fx.sort_keys()
    return fx


def _make_published(root: Path) -> None:
    make_waymo_published(root)


LAYOUTS_EXTRA = {"waymo": make_waymo}
PUBLISHED_EXTRA = {"waymo": _make_published}
