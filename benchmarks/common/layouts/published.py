"""Tiny fixtures in the published layouts of the first readers (CamVid, IDD Lite, YCOR,
Cityscapes, KITTI, Mapillary Vistas, BDD100K, IDD, RUGD, RELLIS-3D, GOOSE, WildDash 2 and
the generic folder); :data:`PUBLISHED_LAYOUTS` holds their writers by reader name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from labelbridge.taxonomy import Taxonomy

from .base import H, LayoutFixture, W, fixture_taxonomy, write_id_label, write_image


def make_camvid(root: Path) -> LayoutFixture:
    fx = LayoutFixture("camvid", root, fixture_taxonomy("camvid11"))
    fx.add("train", root / "train/0001TP_000010.png", root / "trainannot/0001TP_000010.png")
    fx.add("train", root / "train/0001TP_000020.jpg", root / "trainannot/0001TP_000020.png")
    fx.add("train", root / "train/Seq05VD_f00000.jpg", root / "trainannot/Seq05VD_f00000.png")
    fx.add("val", root / "val/0016E5_07959.png", root / "valannot/0016E5_07959.png")
    fx.add("test", root / "test/0001TP_008550.png", root / "testannot/0001TP_008550.png")
    fx.sort_keys()
    return fx


def make_idd_lite(root: Path) -> LayoutFixture:
    fx = LayoutFixture("idd_lite", root, fixture_taxonomy("idd_level1"))
    for split, seq, ident in [
        ("train", "0", "024541"),
        ("train", "0", "024703"),
        ("train", "12", "1"),
        ("val", "3", "7"),
    ]:
        fx.add(
            split,
            root / f"leftImg8bit/{split}/{seq}/{ident}_image.jpg",
            root / f"gtFine/{split}/{seq}/{ident}_label.png",
        )
    fx.add("test", root / "leftImg8bit/test/5/000111_image.jpg", None)
    fx.add("test", root / "leftImg8bit/test/5/000112_image.jpg", None)
    fx.sort_keys()
    return fx


def make_ycor(root: Path) -> LayoutFixture:
    fx = LayoutFixture("ycor", root, fixture_taxonomy("ycor"))
    for split, ident in [("train", "iid000000"), ("train", "iid000007"), ("valid", "iid000003")]:
        fx.add(
            split,
            root / f"{split}/{ident}/rgb.jpg",
            root / f"{split}/{ident}/labels.png",
            label_mode="P",
        )
    fx.sort_keys()
    return fx


def make_cityscapes(root: Path) -> LayoutFixture:
    fx = LayoutFixture("cityscapes", root, fixture_taxonomy("cityscapes"))
    for split, city, frame in [
        ("train", "aachen", "000000_000019"),
        ("train", "bremen", "000001_000019"),
        ("val", "lindau", "000000_000019"),
    ]:
        stem = f"{city}_{frame}"
        fx.add(
            split,
            root / f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png",
            root / f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png",
        )
        # the other files of a real gtFine folder must be ignored
        write_id_label(
            root / f"gtFine/{split}/{city}/{stem}_gtFine_instanceIds.png",
            np.zeros((H, W), np.int32),
        )
    fx.add("test", root / "leftImg8bit/test/berlin/berlin_000000_000019_leftImg8bit.png", None)
    fx.sort_keys()
    return fx


def make_kitti(root: Path) -> LayoutFixture:
    fx = LayoutFixture("kitti", root, fixture_taxonomy("kitti"))
    for name in ("000000_10", "000001_10"):
        fx.add(
            "training",
            root / f"training/image_2/{name}.png",
            root / f"training/semantic/{name}.png",
        )
    fx.add("testing", root / "testing/image_2/000000_10.png", None)
    fx.sort_keys()
    return fx


def make_mapillary(root: Path) -> LayoutFixture:
    fx = LayoutFixture("mapillary", root, fixture_taxonomy("mapillary_vistas_v1_2"))
    for name in ("--0bVeCNOmTK1eBq2DVjXg", "-0Dh3WFGF0ubyAeRCa4Ndw"):
        fx.add(
            "training",
            root / f"training/images/{name}.jpg",
            root / f"training/labels/{name}.png",
            label_mode="P",
        )
    # the v2.0 release keeps v1.2 labels under <split>/v1.2/labels
    fx.add(
        "validation",
        root / "validation/images/_1Gn_xkw7sa_i9GU4mkxxQ.jpg",
        root / "validation/v1.2/labels/_1Gn_xkw7sa_i9GU4mkxxQ.png",
        label_mode="P",
    )
    fx.add("testing", root / "testing/images/__1SwvBM1G6a2jEh4EuaRg.jpg", None)
    fx.sort_keys()
    return fx


def make_bdd100k(root: Path) -> LayoutFixture:
    fx = LayoutFixture("bdd100k", root, fixture_taxonomy("bdd100k"))
    for split, name in [
        ("train", "0a0a0b1a-7c39d841"),
        ("train", "0a0b16e2-93f8c456"),
        ("val", "7d2f7975-e0c1c5a7"),
    ]:
        fx.add(
            split,
            root / f"images/10k/{split}/{name}.jpg",
            root / f"labels/sem_seg/masks/{split}/{name}.png",
        )
    fx.add("test", root / "images/10k/test/ac6d4f42-00000000.jpg", None)
    fx.sort_keys()
    return fx


def make_idd(root: Path) -> LayoutFixture:
    fx = LayoutFixture("idd", root, fixture_taxonomy("idd_level3"))
    for split, seq, frame in [
        ("train", "201", "frame0029"),
        ("train", "202", "frame0001"),
        ("val", "119", "frame0300"),
    ]:
        fx.add(
            split,
            root / f"leftImg8bit/{split}/{seq}/{frame}_leftImg8bit.png",
            root / f"gtFine/{split}/{seq}/{frame}_gtFine_labellevel3Ids.png",
        )
    fx.add("test", root / "leftImg8bit/test/300/frame0002_leftImg8bit.png", None)
    fx.sort_keys()
    return fx


def make_rugd(root: Path) -> LayoutFixture:
    from labelbridge.data.readers.rugd import RUGD_SPLIT_SEQUENCES

    fx = LayoutFixture("rugd", root, fixture_taxonomy("rugd", "color"))
    for split, sequences in RUGD_SPLIT_SEQUENCES.items():
        for seq in sequences:
            n_frames = 2 if seq == "trail" else 1
            for n in range(n_frames):
                name = f"{seq}_{(n + 1) * 10:05d}.png"
                fx.add(
                    split,
                    root / f"RUGD_frames-with-annotations/{seq}/{name}",
                    root / f"RUGD_annotations/{seq}/{name}",
                )
    fx.sort_keys()
    fx.keys["all"] = sorted(
        (k for keys in fx.keys.values() for k in keys), key=lambda k: fx.files[k][0]
    )
    return fx


def make_rellis3d(root: Path) -> LayoutFixture:
    fx = LayoutFixture("rellis3d", root, fixture_taxonomy("rellis3d"))
    rows = {
        "train": [("00000", "frame000000-1581624652_750"), ("00001", "frame000005-1581624653_250")],
        "val": [("00003", "frame000100-1581797000_000")],
        "test": [("00004", "frame000200-1581791000_100")],
    }
    for split, frames in rows.items():
        lines = []
        for seq, frame in frames:
            img, lab = (
                f"{seq}/pylon_camera_node/{frame}.jpg",
                f"{seq}/pylon_camera_node_label_id/{frame}.png",
            )
            fx.add(split, root / img, root / lab)
            lines.append(f"{img} {lab}")
        (root / f"{split}.lst").write_text("\n".join(lines) + "\n")
    return fx


def make_goose(root: Path) -> LayoutFixture:
    fx = LayoutFixture("goose", root, fixture_taxonomy("goose"))
    for split, scen, stem in [
        ("train", "2022-07-22_flight", "2022-07-22_flight__0000_1658492967230070008"),
        ("train", "2022-08-30_siegertsbrunn", "2022-08-30_siegertsbrunn__0012_1661866000000000000"),
        ("val", "2022-07-22_flight", "2022-07-22_flight__0100_1658493000000000000"),
    ]:
        fx.add(
            split,
            root / f"images/{split}/{scen}/{stem}_windshield_vis.png",
            root / f"labels/{split}/{scen}/{stem}_labelids.png",
        )
        write_image(root / f"labels/{split}/{scen}/{stem}_color.png", np.zeros((H, W, 3), np.uint8))
    fx.add(
        "test",
        root
        / "images/test/2022-07-07_campus/2022-07-07_campus__0015_1657197601665184211_windshield_vis.png",
        None,
    )
    fx.sort_keys()
    return fx


def make_wilddash2(root: Path) -> LayoutFixture:
    fx = LayoutFixture("wilddash2", root, fixture_taxonomy("wilddash2"))
    for name in ("ad0000", "at0001"):
        fx.add("public", root / f"images/{name}.jpg", root / f"labels/{name}_labelIds.png")
    (root / "panoptic.json").write_text("{}")  # present in the release, not read
    fx.sort_keys()
    return fx


def make_folder(root: Path) -> LayoutFixture:
    tax = Taxonomy.from_dict(
        {
            "name": "demo_world",
            "classes": [
                {"id": 0, "name": "ground", "color": [128, 64, 128]},
                {"id": 1, "name": "wall", "color": [70, 70, 70]},
                {"id": 7, "name": "lamp", "color": [250, 170, 30]},
                {"id": 255, "name": "void", "color": [0, 0, 0], "ignore": True},
            ],
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "taxonomy.yaml").write_text(yaml.safe_dump(tax.to_dict(), sort_keys=False))
    fx = LayoutFixture("folder", root, tax)
    fx.add(
        "train", root / "images/train/town_a/img_000.png", root / "labels/train/town_a/img_000.png"
    )
    fx.add("train", root / "images/train/img_001.jpg", root / "labels/train/img_001.png")
    fx.add(
        "val", root / "images/val/img_100.png", root / "labels/val/img_100.png", label_mode="I;16"
    )
    fx.add("unlabelled", root / "images/unlabelled/img_200.png", None)
    fx.sort_keys()
    return fx


PUBLISHED_LAYOUTS: dict[str, Callable[[Path], LayoutFixture]] = {
    "camvid": make_camvid,
    "idd_lite": make_idd_lite,
    "ycor": make_ycor,
    "cityscapes": make_cityscapes,
    "kitti": make_kitti,
    "mapillary": make_mapillary,
    "bdd100k": make_bdd100k,
    "idd": make_idd,
    "rugd": make_rugd,
    "rellis3d": make_rellis3d,
    "goose": make_goose,
    "wilddash2": make_wilddash2,
    "folder": make_folder,
}
