"""Fixtures of the generic layouts' variants: colour-coded folder and list file."""

from __future__ import annotations

from pathlib import Path

import yaml

from labelbridge.taxonomy import Taxonomy

from .base import LayoutFixture

COLOR_WORLD = {
    "name": "colour_world",
    "label_format": "color",
    "classes": [
        {"id": 0, "name": "road", "color": [128, 64, 128]},
        {"id": 1, "name": "tree", "color": [107, 142, 35]},
        {"id": 2, "name": "sky", "color": [70, 130, 180]},
        {"id": 3, "name": "void", "color": [0, 0, 0], "ignore": True},
    ],
}


def _write_taxonomy(root: Path, data: dict) -> Taxonomy:
    root.mkdir(parents=True, exist_ok=True)
    (root / "taxonomy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return Taxonomy.from_dict(data)


def make_folder_color(root: Path) -> LayoutFixture:
    """The generic folder with RGB labels in the taxonomy's colours."""
    fx = LayoutFixture("folder", root, _write_taxonomy(root, COLOR_WORLD))
    fx.add("train", root / "images/train/a/img_000.png", root / "labels/train/a/img_000.png")
    fx.add("train", root / "images/train/img_001.jpg", root / "labels/train/img_001.png")
    fx.add("val", root / "images/val/img_100.png", root / "labels/val/img_100.png")
    fx.sort_keys()
    return fx


def make_listfile(root: Path) -> LayoutFixture:
    """CamVid-style list files: ``train.txt`` with relative pairs, ``val.txt`` with the
    absolute paths of the publisher's machine (SegNet's ``/SegNet/CamVid/...``), and an
    unlabelled ``test.lst``."""
    tax_data = {
        "name": "list_world",
        "classes": [
            {"id": 0, "name": "road", "color": [128, 64, 128]},
            {"id": 1, "name": "car", "color": [0, 0, 142]},
            {"id": 5, "name": "sign", "color": [220, 220, 0]},
            {"id": 255, "name": "void", "color": [0, 0, 0], "ignore": True},
        ],
    }
    fx = LayoutFixture("listfile", root, _write_taxonomy(root, tax_data))
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    # train.txt lists its pairs out of name order: readers keep the file's order
    for name in ("0001TP_006720", "0001TP_006690"):
        fx.add("train", root / f"train/{name}.png", root / f"trainannot/{name}.png")
        lines["train"].append(f"train/{name}.png trainannot/{name}.png")
    fx.add("val", root / "val/0016E5_07959.png", root / "valannot/0016E5_07959.png")
    lines["val"].append(
        "/SegNet/CamVid/val/0016E5_07959.png /SegNet/CamVid/valannot/0016E5_07959.png"
    )
    fx.add("test", root / "test/0001TP_008550.png", None)
    lines["test"].append("test/0001TP_008550.png")
    for split, rows in lines.items():
        suffix = ".lst" if split == "test" else ".txt"
        (root / f"{split}{suffix}").write_text("\n".join(rows) + "\n")
    return fx


LAYOUTS_EXTRA = {"folder_color": make_folder_color, "listfile": make_listfile}
