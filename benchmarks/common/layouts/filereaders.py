"""Fixtures in the published layouts of five file-based readers: ApolloScape scene
parsing, A2D2 semantic segmentation, TAS500, Makassar road/lanes and Freiburg Forest.

Each generator writes the exact folder and file names of the release, as given by the
sources cited in the reader modules (``labelbridge/data/readers/<name>.py``):

* ApolloScape: ``road0X_{ins,seg}/{ColorImage,Label}/Record<n>/Camera {5,6}/`` with names
  taken from the data-priors list files (``road01_ins_train.lst`` etc.), plain ``.png``
  labels for road01 and ``_bin.png`` for road02; ``_instanceIds.png`` files beside them
  (ApolloScope's file types) must be ignored; tab-separated list files.
* A2D2: ``camera_lidar_semantic/<YYYYMMDD_hhmmss>/{camera,label,lidar}/<cam>/`` with the
  ``README-SemSeg.txt`` names, JSON info files beside the images, and a ``class_list.json``
  written from the taxonomy (``"#rrggbb": name``).
* TAS500: ``{train,val,test}/`` + ``{train,val}_labels_ids/`` + ``{train,val}_labels/``.
* Makassar: ``{train,val}/{images,masks}/`` with RGB masks (and a reference-converted
  ``<name>_id.png`` that must be ignored).
* Freiburg Forest: ``{train,test}/{rgb,GT_color}/`` with ``<name>_Clipped.jpg`` and both
  label namings (``<name>_mask.png``, ``<name>_Clipped.png``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import (
    H,
    LayoutFixture,
    W,
    fixture_taxonomy,
    write_color_label,
    write_id_label,
)


# ---------------------------------------------------------------------------- ApolloScape
def make_apolloscape(root: Path) -> LayoutFixture:
    """Five frames in three road folders; ``train``/``val``/``test`` list files."""
    fx = LayoutFixture("apolloscape", root, fixture_taxonomy("apolloscape"))
    rows = [  # (road, record, camera, stamp, label suffix); names from data-priors lists
        ("road01_ins", "Record011", "5", "170908_061502408", ""),
        ("road01_ins", "Record011", "6", "170908_061502408", ""),
        ("road01_ins", "Record011", "5", "170908_061502547", ""),
        ("road02_ins", "Record004", "5", "170927_064253341", "_bin"),
        ("road02_seg", "Record022", "6", "170927_071000123", "_bin"),
    ]
    rel: dict[str, tuple[str, str]] = {}
    for road, record, cam, stamp, suffix in rows:
        stem = f"{stamp}_Camera_{cam}"
        image = f"{road}/ColorImage/{record}/Camera {cam}/{stem}.jpg"
        label = f"{road}/Label/{record}/Camera {cam}/{stem}{suffix}.png"
        key = fx.add("all", root / image, root / label)
        rel[key] = (image, label)
        if road.endswith("_ins"):  # instance labels of the ins archives: not read
            write_id_label(
                root / f"{road}/Label/{record}/Camera {cam}/{stem}_instanceIds.png",
                np.zeros((H, W), np.int32),
            )
    fx.sort_keys()
    keys = list(rel)
    splits = {  # list file -> keys, in file order
        "lists/road01_ins_train.lst": [keys[1], keys[0]],
        "road02_ins_train.lst": [keys[3]],
        "road01_ins_val.lst": [keys[2]],
        "lists/road02_seg_test.lst": [keys[4]],
    }
    for name, split_keys in splits.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{rel[k][0]}\t{rel[k][1]}\n" for k in split_keys))
    # splits: list files in name order (root wins over lists/, which are merged by name)
    fx.keys["train"] = [keys[1], keys[0], keys[3]]
    fx.keys["val"] = [keys[2]]
    fx.keys["test"] = [keys[4]]
    return fx


# ---------------------------------------------------------------------------- A2D2
A2D2_ROWS = [  # (scene folder, camera folder, position tag, frame id)
    ("20180807_145028", "cam_front_center", "frontcenter", "000001617"),
    ("20180807_145028", "cam_front_center", "frontcenter", "000002355"),
    ("20180807_145028", "cam_side_left", "sideleft", "000001617"),
    ("20181107_132730", "cam_front_center", "frontcenter", "000000250"),
]


def write_a2d2_class_list(path: Path, taxonomy) -> None:
    """``class_list.json`` as released: ``{"#rrggbb": label name}`` in class order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"#{:02x}{:02x}{:02x}".format(*c.color): c.name for c in taxonomy.classes}
    path.write_text(json.dumps(data, indent=4))


def make_a2d2(root: Path) -> LayoutFixture:
    fx = LayoutFixture("a2d2", root, fixture_taxonomy("a2d2", "color"))
    base = root / "camera_lidar_semantic"
    for scene, cam, pos, frame in A2D2_ROWS:
        stamp = scene.replace("_", "")
        image = base / f"{scene}/camera/{cam}/{stamp}_camera_{pos}_{frame}.png"
        fx.add("all", image, base / f"{scene}/label/{cam}/{stamp}_label_{pos}_{frame}.png")
        image.with_suffix(".json").write_text("{}")  # camera info file: not read
        lidar = base / f"{scene}/lidar/{cam}/{stamp}_lidar_{pos}_{frame}.npz"
        lidar.parent.mkdir(parents=True, exist_ok=True)
        lidar.write_bytes(b"")
    write_a2d2_class_list(base / "class_list.json", fx.taxonomy)
    fx.sort_keys()
    return fx


# ---------------------------------------------------------------------------- TAS500
def make_tas500(root: Path) -> LayoutFixture:
    fx = LayoutFixture("tas500", root, fixture_taxonomy("tas500"))
    for split, name in [
        ("train", "1537962190_1537962200"),
        ("train", "1537962190_1537962300"),
        ("val", "1538045000_1538045010"),
    ]:
        fx.add(split, root / f"{split}/{name}.png", root / f"{split}_labels_ids/{name}.png")
        # the colour pictures of the labels: not read
        write_color_label(
            root / f"{split}_labels/{name}.png", np.zeros((H, W), np.int32), fx.taxonomy
        )
    fx.add("test", root / "test/1539000000_1539000010.png", None)
    fx.sort_keys()
    return fx


# ---------------------------------------------------------------------------- Makassar
def make_makassar(root: Path) -> LayoutFixture:
    fx = LayoutFixture("makassar", root, fixture_taxonomy("makassar", "color"))
    for split, name in [("train", "img_0001"), ("train", "img_0002"), ("val", "img_0101")]:
        fx.add(split, root / f"{split}/images/{name}.jpg", root / f"{split}/masks/{name}.png")
        # the reference's converted id file (prepare_lanes.py output): not read
        write_id_label(root / f"{split}/masks/{name}_id.png", np.zeros((H, W), np.int32))
    fx.sort_keys()
    return fx


# ---------------------------------------------------------------------------- Freiburg Forest
def make_freiburg_forest(root: Path) -> LayoutFixture:
    """Root = ``freiburg_forest_annotated``; both GT_color namings occur."""
    fx = LayoutFixture("freiburg_forest", root, fixture_taxonomy("freiburg_forest", "color"))
    for split, name, label_end in [
        ("train", "b1-99445", "_mask.png"),
        ("train", "b84-7785", "_Clipped.png"),
        ("test", "b1-09517", "_mask.png"),
    ]:
        fx.add(
            split,
            root / f"{split}/rgb/{name}_Clipped.jpg",
            root / f"{split}/GT_color/{name}{label_end}",
        )
        depth = root / f"{split}/depth_gray/{name}_Clipped_redict_depth_gray.png"
        write_id_label(depth, np.zeros((H, W), np.int32))  # other modality: not read
    fx.sort_keys()
    return fx


LAYOUTS_EXTRA = {
    "apolloscape": make_apolloscape,
    "a2d2": make_a2d2,
    "tas500": make_tas500,
    "makassar": make_makassar,
    "freiburg_forest": make_freiburg_forest,
}
