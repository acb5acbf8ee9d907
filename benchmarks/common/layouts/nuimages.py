"""A tiny nuImages release in its published layout, and the folder prepared from it.

Layout and table schemas: nuscenes-devkit ``docs/schema_nuimages.md`` (HEAD ``d9de17a``,
2025-08-28: ``sample`` has ``key_camera_token`` only, ``sensor.modality`` is always
``camera``), ``python-sdk/nuimages/nuimages.py`` (the ten tables it loads, ``samples/`` and
``sweeps/`` file names) and ``export/export_release.py`` (``v1.0-{train,val,test,mini}``
metadata folders next to ``samples/`` and ``sweeps/``). Every record carries all fields of
its table; tokens are 32 hex digits; file names follow the release pattern
``<log>__<channel>__<timestamp>.jpg``. Masks are real COCO compressed RLE strings
(pycocotools ``rleToString``), base64-encoded as in ``object_ann.json`` /
``surface_ann.json`` (devkit ``mask_decode``), written by :func:`rle_encode` here. The
test version's annotation tables are empty, as released.

Frames (8x6 images, :data:`FRAMES`): surfaces (driveable surface, ego vehicle) under
overlapping objects whose table order differs from their token order (the devkit draws
objects sorted by token), one object without a mask, one sweep that must not be
labelled.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from labelbridge.taxonomy import load_taxonomy

from .base import H, LayoutFixture, W, write_image

# (x0, y0, x1, y1) inclusive pixel rectangles of the 8x6 frames
Rect = tuple[int, int, int, int]


def token(seed: str) -> str:
    """A 32-hex-digit token, stable per seed."""
    return hashlib.md5(seed.encode()).hexdigest()


# ---------------------------------------------------------------------------- RLE encoding
def rle_string(counts: list[int]) -> bytes:
    """COCO compressed RLE string of run lengths (pycocotools ``rleToString``)."""
    out = bytearray()
    for i, count in enumerate(counts):
        x = count - (counts[i - 2] if i > 2 else 0)
        while True:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append((c | (0x20 if more else 0)) + 48)
            if not more:
                break
    return bytes(out)


def rle_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a binary ``(h, w)`` mask in column-major order, zeros first."""
    flat = np.asarray(mask, dtype=np.uint8).reshape(-1, order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = int(v), 0
        run += 1
    counts.append(run)
    return counts


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """nuImages mask record ``{"size": [h, w], "counts": base64 RLE string}``."""
    h, w = mask.shape
    return {
        "size": [int(h), int(w)],
        "counts": base64.b64encode(rle_string(rle_counts(mask))).decode("ascii"),
    }


def rect_mask(rect: Rect, h: int = H, w: int = W) -> np.ndarray:
    x0, y0, x1, y1 = rect
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[y0 : y1 + 1, x0 : x1 + 1] = 1
    return mask


# ---------------------------------------------------------------------------- the frames
LOG = "n008-2018-09-18-14-54-39-0400"
CHANNELS = ("CAM_BACK", "CAM_FRONT")
#: version -> key frames: (channel, timestamp, surfaces [(category, rect)],
#: objects [(token seed, category, rect or None)] in table order)
FRAMES: dict[str, list[tuple[str, int, list, list]]] = {
    "v1.0-train": [
        (
            "CAM_FRONT",
            1537297163912404,
            [("flat.driveable_surface", (0, 3, 7, 5)), ("vehicle.ego", (0, 5, 7, 5))],
            [
                ("car-1", "vehicle.car", (1, 1, 4, 4)),  # token f... : drawn last
                ("adult-1", "human.pedestrian.adult", (3, 2, 6, 5)),  # token 0... : first
                ("cone-1", "movable_object.trafficcone", None),  # no mask: skipped
            ],
        ),
        (
            "CAM_BACK",
            1537297164437525,
            [("flat.driveable_surface", (0, 2, 7, 5))],
            [("truck-1", "vehicle.truck", (0, 0, 2, 3))],
        ),
    ],
    "v1.0-val": [
        (
            "CAM_FRONT",
            1537297170912404,
            [("flat.driveable_surface", (0, 4, 7, 5))],
            [
                ("bike-1", "vehicle.bicycle", (2, 1, 5, 4)),
                ("barrier-1", "movable_object.barrier", (4, 0, 7, 2)),
            ],
        )
    ],
    "v1.0-test": [("CAM_BACK", 1537297180437525, [], [])],
}


def _object_token(version: str, seed: str) -> str:
    tok = token(f"{version}/object/{seed}")
    # fix the token order the fixture relies on: car-1 sorts after adult-1
    return {"car-1": "f" + tok[1:], "adult-1": "0" + tok[1:]}.get(seed, tok)


def filename(channel: str, stamp: int, kind: str = "samples") -> str:
    return f"{kind}/{channel}/{LOG}__{channel}__{stamp}.jpg"


def expected_label(version: str, frame: tuple) -> np.ndarray:
    """The devkit rule painted directly: surfaces in table order, then objects by token."""
    ids = {c.name: c.id for c in load_taxonomy("nuimages").classes}
    _, _, surfaces, objects = frame
    label = np.zeros((H, W), dtype=np.int32)
    for cat, rect in surfaces:
        label[rect_mask(rect) == 1] = ids[cat]
    for _, cat, rect in sorted(objects, key=lambda o: _object_token(version, o[0])):
        if rect is not None:
            label[rect_mask(rect) == 1] = ids[cat]
    return label


def _write_tables(folder: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (folder / f"{name}.json").write_text(json.dumps(rows, indent=0))


def make_published(root: Path) -> dict[str, np.ndarray | None]:
    """Write the published layout; returns image path (relative to ``root``) -> expected
    ``(H, W)`` int32 label (``None`` for the unlabelled test version)."""
    tax = load_taxonomy("nuimages")
    categories = [c.name for c in tax.classes if c.id != 0]
    expected: dict[str, np.ndarray | None] = {}
    n_image = 0
    for version, frames in FRAMES.items():
        v = version
        cat_tok = {name: token(f"category/{name}") for name in categories}
        sensors = [
            {"token": token(f"{v}/sensor/{ch}"), "channel": ch, "modality": "camera"}
            for ch in CHANNELS
        ]
        calibrated = [
            {
                "token": token(f"{v}/cs/{ch}"),
                "sensor_token": token(f"{v}/sensor/{ch}"),
                "translation": [1.5, 0.0, 1.6],
                "rotation": [0.5, -0.5, 0.5, -0.5],
                "camera_intrinsic": [[1266.4, 0.0, 816.3], [0.0, 1266.4, 491.5], [0.0, 0.0, 1.0]],
                "camera_distortion": [-0.35, 0.16, 0.0004, -0.0002, -0.04],
            }
            for ch in CHANNELS
        ]
        log = {
            "token": token(f"{v}/log"),
            "logfile": LOG,
            "vehicle": "n008",
            "date_captured": "2018-09-18",
            "location": "boston-seaport",
        }
        tables: dict[str, list[dict[str, Any]]] = {
            "attribute": [
                {
                    "token": token(f"attribute/{name}"),
                    "name": name,
                    "description": f"{name} (fixture)",
                }
                for name in ("vehicle.moving", "vehicle_light.emergency.not_flashing")
            ],
            "calibrated_sensor": calibrated,
            "category": [
                {"token": cat_tok[name], "name": name, "description": f"{name} (fixture)"}
                for name in categories
            ],
            "ego_pose": [],
            "log": [log],
            "object_ann": [],
            "sample": [],
            "sample_data": [],
            "sensor": sensors,
            "surface_ann": [],
        }
        for f_index, frame in enumerate(frames):
            channel, stamp, surfaces, objects = frame
            sample_tok = token(f"{v}/sample/{f_index}")
            key_tok = token(f"{v}/sd/{f_index}/key")
            sweep_tok = token(f"{v}/sd/{f_index}/sweep")
            with_sweep = f_index == 0
            records = [(key_tok, stamp, True, filename(channel, stamp))]
            if with_sweep:
                records.append(
                    (sweep_tok, stamp + 500000, False, filename(channel, stamp + 500000, "sweeps"))
                )
            for sd_tok, sd_stamp, key, fname in records:
                pose_tok = token(f"{v}/pose/{sd_tok}")
                tables["ego_pose"].append(
                    {
                        "token": pose_tok,
                        "translation": [410.1, 1180.3, 0.0],
                        "rotation": [0.57, -0.0, 0.0, -0.82],
                        "timestamp": sd_stamp,
                        "rotation_rate": [0.001, -0.002, 0.01],
                        "acceleration": [0.2, -0.1, 9.8],
                        "speed": 3.2,
                    }
                )
                tables["sample_data"].append(
                    {
                        "token": sd_tok,
                        "sample_token": sample_tok,
                        "ego_pose_token": pose_tok,
                        "calibrated_sensor_token": token(f"{v}/cs/{channel}"),
                        "filename": fname,
                        "fileformat": "jpg",
                        "width": W,
                        "height": H,
                        "timestamp": sd_stamp,
                        "is_key_frame": key,
                        "next": sweep_tok if key and with_sweep else "",
                        "prev": key_tok if not key else "",
                    }
                )
                rng = np.random.default_rng(n_image)
                n_image += 1
                write_image(root / fname, rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8))
            tables["sample"].append(
                {
                    "token": sample_tok,
                    "timestamp": stamp,
                    "log_token": log["token"],
                    "key_camera_token": key_tok,
                }
            )
            for s_index, (cat, rect) in enumerate(surfaces):
                tables["surface_ann"].append(
                    {
                        "token": token(f"{v}/surface/{f_index}/{s_index}"),
                        "sample_data_token": key_tok,
                        "category_token": cat_tok[cat],
                        "mask": rle_encode(rect_mask(rect)),
                    }
                )
            for seed, cat, rect in objects:
                x0, y0, x1, y1 = rect if rect is not None else (5, 0, 6, 1)
                tables["object_ann"].append(
                    {
                        "token": _object_token(v, seed),
                        "sample_data_token": key_tok,
                        "category_token": cat_tok[cat],
                        "attribute_tokens": [token("attribute/vehicle.moving")]
                        if cat.startswith("vehicle.")
                        else [],
                        "bbox": [x0, y0, x1 + 1, y1 + 1],
                        "mask": rle_encode(rect_mask(rect)) if rect is not None else None,
                    }
                )
            labelled = v != "v1.0-test"
            expected[filename(channel, stamp)] = expected_label(v, frame) if labelled else None
        _write_tables(root / v, tables)
    return expected


def make_nuimages(root: Path) -> LayoutFixture:
    """The published layout at ``<root>_published``, prepared into ``root``."""
    from labelbridge.data.prepare import prepare_dataset

    published = root.parent / (root.name + "_published")
    expected = make_published(published)
    prepare_dataset("nuimages", published, root, progress=False)
    fx = LayoutFixture("nuimages", root, load_taxonomy("nuimages"))
    for version, frames in FRAMES.items():
        names = sorted(filename(ch, stamp) for ch, stamp, _, _ in frames)
        for name in names:
            key = name[: -len(".jpg")]
            label = expected[name]
            fx.keys.setdefault(version, []).append(key)
            fx.labels[key] = label
            label_path = root / "semantic" / version / f"{key}.png" if label is not None else None
            fx.files[key] = (published / name, label_path)
    return fx


LAYOUTS_EXTRA = {"nuimages": make_nuimages}
PUBLISHED_EXTRA = {"nuimages": make_published}
