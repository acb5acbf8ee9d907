"""Readers of ApolloScape, A2D2, TAS500, Makassar and Freiburg Forest on fixtures in their
published layouts (benchmarks/common/layouts/filereaders.py), plus dataset-specific
checks with hand-written values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.common.layouts import H, LayoutFixture, W
from labelbridge.data import create_dataset
from labelbridge.data.base import SampleError
from labelbridge.errors import DatasetError
from reader_contract import ReaderContract


def _rgb_label(path: Path, colours: list[tuple[int, int, int]]) -> None:
    """An ``(H, W)`` RGB label whose column ``x`` has ``colours[x % len(colours)]``."""
    rgb = np.zeros((H, W, 3), np.uint8)
    for x in range(W):
        rgb[:, x] = colours[x % len(colours)]
    Image.fromarray(rgb).save(path)


# ============================================================================ ApolloScape
class TestApolloScape(ReaderContract):
    layout = "apolloscape"

    def test_bin_label_and_plain_label(self, fx: LayoutFixture) -> None:
        ds = self.open(fx, "all")
        names = {p.key.rsplit("/", 1)[-1]: p.label.name for p in ds.pairs}
        assert names["170908_061502408_Camera_5"] == "170908_061502408_Camera_5.png"
        assert names["170927_064253341_Camera_5"] == "170927_064253341_Camera_5_bin.png"
        # the instance-id files beside the labels are never paired
        assert not any("instanceIds" in p.label.name for p in ds.pairs)

    def test_list_file_split_keeps_file_order(self, fx: LayoutFixture) -> None:
        ds = self.open(fx, "train")
        assert [p.key for p in ds.pairs] == [
            "road01_ins/ColorImage/Record011/Camera 6/170908_061502408_Camera_6",
            "road01_ins/ColorImage/Record011/Camera 5/170908_061502408_Camera_5",
            "road02_ins/ColorImage/Record004/Camera 5/170927_064253341_Camera_5",
        ]

    def test_label_ids_are_apollo_ids(self, fx: LayoutFixture) -> None:
        # first three distinct-colour classes: others 0, sky 17, car 33 (labels_apollo.py)
        sample = self.open(fx, "val")[0]
        assert set(np.unique(sample.label).tolist()) == {0, 17, 33}

    def test_listed_label_under_other_name(self, fx: LayoutFixture) -> None:
        image_rel = "road02_ins/ColorImage/Record004/Camera 5/170927_064253341_Camera_5.jpg"
        plain = "road02_ins/Label/Record004/Camera 5/170927_064253341_Camera_5.png"
        (fx.root / "road02_ins_train.lst").write_text(f"{image_rel}\t{plain}\n")
        ds = self.open(fx, "train")
        assert ds.pairs[-1].label.name == "170927_064253341_Camera_5_bin.png"

    def test_space_split_line_is_refused(self, fx: LayoutFixture) -> None:
        (fx.root / "road02_ins_train.lst").write_text("a.jpg\tb.png\tc.png\n")
        with pytest.raises(DatasetError, match=r"road02_ins_train.lst:1: .*3 fields"):
            self.open(fx, "train")

    def test_no_list_file_named(self, fx: LayoutFixture) -> None:
        (fx.root / "road01_ins_val.lst").unlink()
        with pytest.raises(DatasetError, match=r"road\*_val.lst"):
            self.open(fx, "val")

    def test_cameras_other_than_5_and_6_ignored(self, fx: LayoutFixture) -> None:
        extra = fx.root / "road01_ins/ColorImage/Record011/Camera 1/170908_1_Camera_1.jpg"
        extra.parent.mkdir(parents=True)
        shutil.copy(fx.files[fx.keys["all"][0]][0], extra)
        assert len(self.open(fx, "all")) == 5


# ============================================================================ A2D2
class TestA2d2(ReaderContract):
    layout = "a2d2"

    def test_colour_decodes_to_class_list_order(self, fx: LayoutFixture) -> None:
        # colours of the real class_list.json: #48d1cc Ego car (entry 46), #ff00ff
        # RD normal street (entry 50), #ff0000 Car 1 (entry 0), #87ceff Sky (entry 51)
        label = fx.files[fx.keys["all"][0]][1]
        _rgb_label(label, [(72, 209, 204), (255, 0, 255), (255, 0, 0), (135, 206, 255)])
        sample = self.open(fx, "all")[0]
        assert sample.label[0].tolist() == [46, 50, 0, 51, 46, 50, 0, 51]
        assert sample.label.dtype == np.int32

    def test_instance_colours_stay_separate_with_groups(self, fx: LayoutFixture) -> None:
        label = fx.files[fx.keys["all"][0]][1]
        _rgb_label(label, [(255, 0, 0), (200, 0, 0), (150, 0, 0), (128, 0, 0)])  # Car 1..4
        sample = self.open(fx, "all")[0]
        assert sorted(np.unique(sample.label).tolist()) == [0, 1, 2, 3]
        assert fx.taxonomy.groups["car"] == ["Car 1", "Car 2", "Car 3", "Car 4"]

    def test_class_list_disagreeing_named(self, fx: LayoutFixture) -> None:
        path = fx.root / "camera_lidar_semantic/class_list.json"
        data = json.loads(path.read_text())
        data["#ff0000"] = "Truck 9"  # renamed entry
        del data["#352e52"]  # Rain dirt missing
        path.write_text(json.dumps(data))
        with pytest.raises(DatasetError) as info:
            self.open(fx, "all")
        msg = str(info.value)
        assert str(path) in msg and "'Truck 9'" in msg and "'Car 1'" in msg
        assert "'Rain dirt'" in msg

    def test_class_list_unreadable_named(self, fx: LayoutFixture) -> None:
        path = fx.root / "camera_lidar_semantic/class_list.json"
        path.write_text("{not json")
        with pytest.raises(DatasetError, match="unreadable A2D2 class list"):
            self.open(fx, "all")

    def test_class_list_optional_and_json_files_ignored(self, fx: LayoutFixture) -> None:
        (fx.root / "camera_lidar_semantic/class_list.json").unlink()
        ds = self.open(fx, "all")
        assert len(ds) == 4 and all(p.image.suffix == ".png" for p in ds.pairs)

    def test_cameras_option(self, fx: LayoutFixture) -> None:
        ds = self.open(fx, "all", cameras=["cam_side_left"])
        assert [p.key for p in ds.pairs] == [
            "camera_lidar_semantic/20180807_145028/camera/cam_side_left/"
            "20180807145028_camera_sideleft_000001617"
        ]

    def test_root_may_be_the_release_folder(self, fx: LayoutFixture) -> None:
        ds = create_dataset("a2d2", fx.root / "camera_lidar_semantic", "all", taxonomy=fx.taxonomy)
        assert len(ds) == 4
        assert ds.pairs[0].key.startswith("20180807_145028/camera/cam_front_center/")

    def test_unknown_colour_named(self, fx: LayoutFixture) -> None:
        label = fx.files[fx.keys["all"][0]][1]
        _rgb_label(label, [(1, 2, 3)])
        with pytest.raises(SampleError, match=r"colours \[\(1, 2, 3\)\]") as info:
            self.open(fx, "all")[0]
        assert info.value.path == str(label)


# ============================================================================ TAS500
class TestTas500(ReaderContract):
    layout = "tas500"

    def test_test_split_unlabelled(self, fx: LayoutFixture) -> None:
        ds = self.open(fx, "test")
        assert [p.label for p in ds.pairs] == [None]

    def test_undefined_255_is_ignored_class(self, fx: LayoutFixture) -> None:
        label = fx.files[fx.keys["val"][0]][1]
        Image.fromarray(np.full((H, W), 255, np.uint8), mode="L").save(label)
        sample = self.open(fx, "val")[0]
        assert (sample.label == 255).all()
        assert fx.taxonomy.by_id(255).ignore

    def test_id_23_is_unknown(self, fx: LayoutFixture) -> None:
        label = fx.files[fx.keys["val"][0]][1]
        Image.fromarray(np.full((H, W), 23, np.uint8), mode="L").save(label)
        with pytest.raises(SampleError, match=r"label ids \[23\]"):
            self.open(fx, "val")[0]

    def test_parent_of_release_folder_accepted(self, fx: LayoutFixture, tmp_path: Path) -> None:
        parent = tmp_path / "holder"
        shutil.copytree(fx.root, parent / "tas500v1.1")
        ds = create_dataset("tas500", parent, "train", taxonomy=fx.taxonomy)
        assert [p.key for p in ds.pairs] == [f"tas500v1.1/{k}" for k in fx.keys["train"]]


# ============================================================================ Makassar
class TestMakassar(ReaderContract):
    layout = "makassar"

    def test_prepare_lanes_colours(self, fx: LayoutFixture) -> None:
        # prepare_lanes.py: background (0,0,0)=0, road (128,0,0)=1, lane_mark_solid
        # (0,128,0)=2, lane_mark_dashed (128,128,0)=3
        label = fx.files[fx.keys["val"][0]][1]
        _rgb_label(label, [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)])
        sample = self.open(fx, "val")[0]
        assert sample.label[0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]

    def test_other_colour_refused_or_ignored(self, fx: LayoutFixture) -> None:
        label = fx.files[fx.keys["val"][0]][1]
        _rgb_label(label, [(128, 64, 128), (128, 0, 0)])  # not a Makassar colour
        with pytest.raises(SampleError, match="not in the palette"):
            self.open(fx, "val")[0]
        sample = self.open(fx, "val", unknown_as_ignore=True)[0]
        assert sample.label[0].tolist() == [0, 1] * 4  # background is the ignore class

    def test_converted_id_files_not_listed(self, fx: LayoutFixture) -> None:
        ds = self.open(fx, "train")
        assert [p.label.name for p in ds.pairs] == ["img_0001.png", "img_0002.png"]

    def test_missing_test_folder_named(self, fx: LayoutFixture) -> None:
        with pytest.raises(DatasetError, match=r"test/images: image folder"):
            self.open(fx, "test")


# ============================================================================ Freiburg Forest
class TestFreiburgForest(ReaderContract):
    layout = "freiburg_forest"

    def test_both_label_namings(self, fx: LayoutFixture) -> None:
        ds = self.open(fx, "train")
        assert [p.label.name for p in ds.pairs] == ["b1-99445_mask.png", "b84-7785_Clipped.png"]

    def test_mask_name_preferred(self, fx: LayoutFixture) -> None:
        other = fx.root / "train/GT_color/b1-99445_Clipped.png"
        shutil.copy(fx.files[fx.keys["train"][0]][1], other)
        assert self.open(fx, "train").pairs[0].label.name == "b1-99445_mask.png"

    def test_colours(self, fx: LayoutFixture) -> None:
        # trail (170,170,170), grass (0,255,0), sky (0,120,255), tree (0,60,0)
        label = fx.files[fx.keys["test"][0]][1]
        _rgb_label(label, [(170, 170, 170), (0, 255, 0), (0, 120, 255), (0, 60, 0)])
        sample = self.open(fx, "test")[0]
        names = [fx.taxonomy.by_id(i).name for i in sample.label[0, :4].tolist()]
        assert names == ["trail", "grass", "sky", "tree"]

    def test_parent_folder_accepted(self, fx: LayoutFixture, tmp_path: Path) -> None:
        parent = tmp_path / "download"
        shutil.copytree(fx.root, parent / "freiburg_forest_annotated")
        ds = create_dataset("freiburg_forest", parent, "test", taxonomy=fx.taxonomy)
        assert [p.key for p in ds.pairs] == ["freiburg_forest_annotated/test/rgb/b1-09517_Clipped"]
