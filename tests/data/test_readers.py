"""Readers on tiny fixtures written in each published layout (benchmarks/common/layouts/).

``ReaderContract`` (:mod:`reader_contract`) holds the checks every reader must pass;
one small subclass per layout names the generator and its split names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.common.layouts import H, LayoutFixture, W, make_camvid, make_ycor, write_id_label
from labelbridge.data import DATASETS, create_dataset
from labelbridge.errors import DatasetError
from reader_contract import ReaderContract


class TestCamVid(ReaderContract):
    layout = "camvid"


class TestIddLite(ReaderContract):
    layout = "idd_lite"


class TestYcor(ReaderContract):
    layout = "ycor"


class TestCityscapes(ReaderContract):
    layout = "cityscapes"


class TestKitti(ReaderContract):
    layout = "kitti"


class TestMapillary(ReaderContract):
    layout = "mapillary"


class TestBdd100k(ReaderContract):
    layout = "bdd100k"


class TestIdd(ReaderContract):
    layout = "idd"


class TestRugd(ReaderContract):
    layout = "rugd"

    def test_split_sizes(self, fx: LayoutFixture) -> None:
        # 12 train sequences (trail has 2 frames), 2 val, 4 test, 18 in all
        assert {s: len(self.open(fx, s)) for s in ("train", "val", "test", "all")} == {
            "train": 13,
            "val": 2,
            "test": 4,
            "all": 19,
        }

    def test_custom_sequences(self, fx: LayoutFixture) -> None:
        ds = self.open(fx, "train", sequences=["creek", "trail"])
        assert [p.key for p in ds.pairs] == [
            "RUGD_frames-with-annotations/creek/creek_00010",
            "RUGD_frames-with-annotations/trail/trail_00010",
            "RUGD_frames-with-annotations/trail/trail_00020",
        ]

    def test_missing_sequence_named(self, fx: LayoutFixture) -> None:
        with pytest.raises(DatasetError, match="sequence 'trail-99'"):
            self.open(fx, "val", sequences=["trail-99"])


class TestRellis3d(ReaderContract):
    layout = "rellis3d"

    def test_missing_list_file(self, fx: LayoutFixture) -> None:
        (fx.root / "val.lst").unlink()
        with pytest.raises(DatasetError, match=r"val\.lst: RELLIS-3D split file not found"):
            self.open(fx, "val")

    def test_bad_line_named(self, fx: LayoutFixture) -> None:
        good = (fx.root / "train.lst").read_text().splitlines()[0]
        (fx.root / "test.lst").write_text(f"{good}\n{good} extra.png\n")
        with pytest.raises(DatasetError, match=r"test\.lst:2: expected"):
            self.open(fx, "test")


class TestGoose(ReaderContract):
    layout = "goose"


class TestWildDash2(ReaderContract):
    layout = "wilddash2"


class TestFolder(ReaderContract):
    layout = "folder"

    def test_taxonomy_from_root(self, fx: LayoutFixture) -> None:
        ds = create_dataset("folder", fx.root, "train")  # no taxonomy argument
        assert ds.taxonomy.name == "demo_world"
        assert [c.id for c in ds.taxonomy.classes] == [0, 1, 7, 255]

    def test_available_splits(self, fx: LayoutFixture) -> None:
        assert DATASETS["folder"].available_splits(fx.root) == ("train", "unlabelled", "val")

    def test_unknown_split_lists_present(self, fx: LayoutFixture) -> None:
        with pytest.raises(DatasetError, match=r"splits present: \['train', 'unlabelled', 'val'\]"):
            self.open(fx, "test")

    def test_missing_taxonomy_file(self, fx: LayoutFixture) -> None:
        (fx.root / "taxonomy.yaml").unlink()
        with pytest.raises(DatasetError, match="taxonomy.yaml: no taxonomy file"):
            create_dataset("folder", fx.root, "train")


# ---------------------------------------------------------------------------- details
def test_camvid_pairs_by_stem_whatever_extension(tmp_path: Path) -> None:
    fx = make_camvid(tmp_path)
    ds = create_dataset("camvid", fx.root, "train")
    assert [p.image.suffix for p in ds.pairs] == [".png", ".jpg", ".jpg"]
    assert [p.label.name for p in ds.pairs] == [
        "0001TP_000010.png",
        "0001TP_000020.png",
        "Seq05VD_f00000.png",
    ]


def test_ycor_palette_index_is_the_id(tmp_path: Path) -> None:
    fx = make_ycor(tmp_path)
    ds = create_dataset("ycor", fx.root, "valid", taxonomy=fx.taxonomy)
    label_file = fx.files[fx.keys["valid"][0]][1]
    with Image_open(label_file) as im:
        assert im.mode == "P"
    np.testing.assert_array_equal(ds[0].label, fx.labels[fx.keys["valid"][0]])


def Image_open(path: Path):  # noqa: N802  (small helper keeping the import local)
    from PIL import Image

    return Image.open(path)


def test_missing_folder_named_with_layout(tmp_path: Path) -> None:
    fx = make_camvid(tmp_path)
    import shutil

    shutil.rmtree(fx.root / "valannot")
    with pytest.raises(
        DatasetError,
        match=r"valannot: label folder of 'camvid' split 'val' not found; expected layout",
    ):
        create_dataset("camvid", fx.root, "val")


def test_unknown_dataset_lists_names(tmp_path: Path) -> None:
    from labelbridge.errors import UserError

    with pytest.raises(UserError, match="unknown dataset 'camvidd'; valid names: .*camvid"):
        create_dataset("camvidd", tmp_path, "train")


def test_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_camvid(tmp_path / "camvid")
    monkeypatch.setenv("LABELBRIDGE_DATA", str(tmp_path))
    assert len(create_dataset("camvid", None, "train")) == 3
    monkeypatch.delenv("LABELBRIDGE_DATA")
    with pytest.raises(DatasetError, match="no root given for dataset 'camvid'"):
        create_dataset("camvid", None, "train")


def test_sixteen_bit_labels_keep_large_ids(tmp_path: Path) -> None:
    from benchmarks.common.layouts import make_folder

    fx = make_folder(tmp_path)
    big = np.full((H, W), 7, dtype=np.int32)
    big[0, 0] = 300  # not in the taxonomy: must be reported, not wrapped to 44
    write_id_label(fx.files[fx.keys["val"][0]][1], big, mode="I;16")
    ds = create_dataset("folder", fx.root, "val")
    with pytest.raises(DatasetError, match=r"label ids \[300\] are not in taxonomy 'demo_world'"):
        ds.load(0)
