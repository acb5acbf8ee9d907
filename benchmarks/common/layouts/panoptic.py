"""Tiny COCO panoptic and WildDash 2 datasets in their published panoptic layouts.

COCO panoptic 2017 (cocodataset/panopticapi README; detectron2 ``datasets/README.md``;
``panoptic_annotations_trainval2017.zip``): images ``{train,val}2017/<12-digit id>.jpg``,
``annotations/panoptic_{train,val}2017.json`` with ``info``, ``licenses``,
``images[{id, file_name, width, height}]`` (``id`` an int, ``file_name`` the zero-padded
``<id>.jpg``), ``annotations[{image_id, file_name: <id>.png, segments_info[{id,
category_id, iscrowd, bbox [x, y, w, h], area}]}]`` and ``categories[{supercategory,
isthing, id, name, color}]`` (things are ids 1..90, stuff 92..200), PNGs in
``annotations/panoptic_{train,val}2017/<id>.png`` (RGB, segment id = R + 256 G + 256^2 B,
0 = VOID). The urban subset lists (UniBwTAS/data-priors ``datasets/coco/lists/``) hold
12-digit ids one per line, at ``<root>/lists/{train,val}_urban_subset.txt``.

WildDash 2 (``wd_public_v2p0.zip``; ozendelait/wilddash_scripts ``pano2sem.py``):
``images/<name>.jpg``, ``panoptic.json`` (same schema; categories carry ``isthing``,
which ``pano2sem.py`` reads) and ``panoptic/<name>.png``. The image ids of the real
file could not be checked; the fixture uses the name. ``isthing`` flags and COCO
``supercategory`` values here are placeholders: the readers do not read them.

The label writer rewrites a panoptic PNG and its annotation's ``segments_info``; it
finds the JSON from the PNG path alone (``<folder>.json`` next to the PNG folder, the
panopticapi convention both datasets follow), so the reliability corruptions work on
copies of the fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from labelbridge.data.prepare import prepare_dataset

from .base import H, LayoutFixture, W, fixture_taxonomy

COCO_TRAIN_IDS = (9, 25, 30)
COCO_VAL_IDS = (139, 285)
#: Urban subsets of the fixture (ids as in the list files): a strict part of each split.
COCO_TRAIN_URBAN = (9, 30)
COCO_VAL_URBAN = (285,)
WD2_NAMES = ("ad0000", "at0001", "de0103")


def panoptic_json_of(png: Path) -> Path:
    """The JSON of a panoptic PNG: ``<dir>/<folder>.json`` for ``<dir>/<folder>/<x>.png``."""
    return png.parent.parent / f"{png.parent.name}.json"


def segment_id(index: int, category: int) -> int:
    """A segment id using all three channels (B = index + 1, unique per segment)."""
    return 65536 * (index + 1) + 256 * ((category * 7) % 256) + (index * 53 + 11) % 256


def write_panoptic_label(png: Path, ids: np.ndarray) -> None:
    """Write ``(H, W)`` raw category ids as a panoptic PNG + its ``segments_info``.

    Id 0 is written as VOID (segment 0, no entry). Every other category becomes two
    segments (left and right half of its pixels), as instances of one class would be.
    The annotation whose ``file_name`` is the PNG's name must exist in the JSON.
    """
    json_path = panoptic_json_of(png)
    data = json.loads(json_path.read_text())
    ann = next((a for a in data["annotations"] if a["file_name"] == png.name), None)
    if ann is None:
        raise AssertionError(f"{json_path} has no annotation for {png.name}")
    seg = np.zeros(ids.shape, dtype=np.int64)
    segments = []
    cols = np.arange(ids.shape[1])[None, :].repeat(ids.shape[0], axis=0)
    for cat in sorted(int(c) for c in np.unique(ids)):
        if cat == 0:
            continue
        for half in (cols < ids.shape[1] // 2, cols >= ids.shape[1] // 2):
            mask = (ids == cat) & half
            if not mask.any():
                continue
            sid = segment_id(len(segments), cat)
            seg[mask] = sid
            ys, xs = np.nonzero(mask)
            segments.append(
                {
                    "id": sid,
                    "category_id": cat,
                    "iscrowd": 0,
                    "bbox": [
                        int(xs.min()),
                        int(ys.min()),
                        int(xs.max() - xs.min() + 1),
                        int(ys.max() - ys.min() + 1),
                    ],
                    "area": int(mask.sum()),
                }
            )
    ann["segments_info"] = segments
    rgb = np.stack([seg % 256, (seg // 256) % 256, seg // 65536], axis=-1).astype(np.uint8)
    png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, mode="RGB").save(png)
    json_path.write_text(json.dumps(data))


def panoptic_skeleton(images: list[tuple[object, str]], categories: list[dict]) -> dict:
    """A panoptic JSON with one empty annotation per ``(image id, image file name)``."""
    return {
        "info": {"description": "labelbridge test fixture"},
        "licenses": [],
        "images": [{"id": i, "file_name": name, "width": W, "height": H} for i, name in images],
        "annotations": [
            {"image_id": i, "file_name": Path(name).with_suffix(".png").name, "segments_info": []}
            for i, name in images
        ],
        "categories": categories,
    }


# ---------------------------------------------------------------------------- COCO
def coco_categories(fx: LayoutFixture) -> list[dict]:
    return [
        {
            "supercategory": "fixture",
            "isthing": int(c.id <= 90),
            "id": c.id,
            "name": c.name,
            "color": list(c.color),
        }
        for c in fx.taxonomy.classes
        if c.id != 0
    ]


def make_coco_panoptic(root: Path) -> LayoutFixture:
    """Published COCO panoptic: train (3), val (2) and the urban subsets (2, 1)."""
    fx = LayoutFixture(
        "coco_panoptic", root, fixture_taxonomy("coco_panoptic"), label_writer=write_panoptic_label
    )
    (root / "annotations").mkdir(parents=True)
    for split, ids in (("train", COCO_TRAIN_IDS), ("val", COCO_VAL_IDS)):
        skeleton = panoptic_skeleton([(i, f"{i:012d}.jpg") for i in ids], coco_categories(fx))
        (root / f"annotations/panoptic_{split}2017.json").write_text(json.dumps(skeleton))
        for i in ids:
            fx.add(
                split,
                root / f"{split}2017/{i:012d}.jpg",
                root / f"annotations/panoptic_{split}2017/{i:012d}.png",
            )
    (root / "lists").mkdir()
    for split, ids in (("train", COCO_TRAIN_URBAN), ("val", COCO_VAL_URBAN)):
        (root / f"lists/{split}_urban_subset.txt").write_text("".join(f"{i:012d}\n" for i in ids))
        fx.keys[f"{split}_urban"] = [f"{split}2017/{i:012d}" for i in ids]
    fx.sort_keys()
    return fx


def make_coco_panoptic_prepared(root: Path) -> LayoutFixture:
    """``datasets prepare coco_panoptic`` output of :func:`make_coco_panoptic`."""
    pub = make_coco_panoptic(root.parent / f"{root.name}_published")
    # image.parent.name: train2017 / val2017
    return _prepared(pub, root, lambda im: f"panoptic_semseg_{im.parent.name}/{im.stem}.png")


# ---------------------------------------------------------------------------- WildDash 2
def make_wilddash2_panoptic(root: Path) -> LayoutFixture:
    """Published WildDash 2 (``wd_public_v2p0``): panoptic.json + panoptic/, no labels/."""
    fx = LayoutFixture(
        "wilddash2", root, fixture_taxonomy("wilddash2"), label_writer=write_panoptic_label
    )
    categories = [
        {"id": c.id, "name": c.name, "color": list(c.color), "isthing": 0}
        for c in fx.taxonomy.classes
    ]
    root.mkdir(parents=True)
    skeleton = panoptic_skeleton([(n, f"{n}.jpg") for n in WD2_NAMES], categories)
    (root / "panoptic.json").write_text(json.dumps(skeleton))
    for name in WD2_NAMES:
        fx.add("public", root / f"images/{name}.jpg", root / f"panoptic/{name}.png")
    fx.sort_keys()
    return fx


def make_wilddash2_prepared(root: Path) -> LayoutFixture:
    """``datasets prepare wilddash2`` output of :func:`make_wilddash2_panoptic`."""
    pub = make_wilddash2_panoptic(root.parent / f"{root.name}_published")
    return _prepared(pub, root, lambda im: f"labels/{im.stem}_labelIds.png")


def _prepared(pub: LayoutFixture, root: Path, label_of) -> LayoutFixture:
    """Prepare the published fixture ``pub`` into ``root``: the same samples, labels at
    ``root / label_of(image)``, images still in the published root."""
    prepare_dataset(pub.dataset, pub.root, root, progress=False)
    files = {key: (image, root / label_of(image)) for key, (image, _) in pub.files.items()}
    return LayoutFixture(
        pub.dataset,
        root,
        pub.taxonomy,
        keys=pub.keys,
        labels=pub.labels,
        images=pub.images,
        files=files,
    )


#: Prepared folders (``*_prepared``) read their images from the published source root.
PREPARED_LAYOUTS = {
    "coco_panoptic_prepared": make_coco_panoptic_prepared,
    "wilddash2_prepared": make_wilddash2_prepared,
}
LAYOUTS_EXTRA = {
    "coco_panoptic": make_coco_panoptic,
    "wilddash2_panoptic": make_wilddash2_panoptic,
    **PREPARED_LAYOUTS,
}
PUBLISHED_EXTRA = {"coco_panoptic": make_coco_panoptic, "wilddash2": make_wilddash2_panoptic}
