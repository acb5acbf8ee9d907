"""The generic layouts' variants: colour-coded folder labels and list files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.common.layouts.generic import make_folder_color, make_listfile
from labelbridge.data import DATASETS, create_dataset
from labelbridge.errors import DatasetError
from reader_contract import ReaderContract


class TestFolderColor(ReaderContract):
    layout = "folder_color"

    def test_colours_decode_to_ids(self, tmp_path: Path) -> None:
        fx = make_folder_color(tmp_path / "d")
        ds = create_dataset("folder", fx.root, "train")  # taxonomy.yaml of the root
        assert ds.taxonomy.label_format == "color"
        key = fx.keys["train"][0]
        rgb = np.asarray(Image.open(fx.files[key][1]).convert("RGB"))
        label = ds[0].label
        # every pixel painted (128, 64, 128) is road (0), (107, 142, 35) tree (1), ...
        for colour, cid in (((128, 64, 128), 0), ((107, 142, 35), 1), ((70, 130, 180), 2)):
            mask = (rgb == colour).all(-1)
            assert mask.any() and (label[mask] == cid).all()

    def test_unknown_colour_named(self, tmp_path: Path) -> None:
        fx = make_folder_color(tmp_path / "d")
        path = fx.files[fx.keys["val"][0]][1]
        rgb = np.asarray(Image.open(path).convert("RGB")).copy()
        rgb[2, 3] = (9, 9, 9)
        Image.fromarray(rgb).save(path)
        with pytest.raises(DatasetError, match=str(path)):
            list(create_dataset("folder", fx.root, "val").iter_samples())


class TestListFile(ReaderContract):
    layout = "listfile"

    def test_file_order_kept(self, tmp_path: Path) -> None:
        fx = make_listfile(tmp_path / "d")
        ds = create_dataset("listfile", fx.root, "train")
        assert [p.key for p in ds.pairs] == ["train/0001TP_006720", "train/0001TP_006690"]

    def test_publisher_absolute_paths_resolve_under_root(self, tmp_path: Path) -> None:
        fx = make_listfile(tmp_path / "d")
        ds = create_dataset("listfile", fx.root, "val")
        assert ds.pairs[0].image == fx.root / "val/0016E5_07959.png"
        assert ds.pairs[0].label == fx.root / "valannot/0016E5_07959.png"

    def test_splits_are_the_list_files(self, tmp_path: Path) -> None:
        fx = make_listfile(tmp_path / "d")
        assert DATASETS["listfile"].available_splits(fx.root) == ("test", "train", "val")
        with pytest.raises(DatasetError, match=r"list files present: \['test', 'train', 'val'\]"):
            create_dataset("listfile", fx.root, "trainval")

    def test_three_fields_named_with_line(self, tmp_path: Path) -> None:
        fx = make_listfile(tmp_path / "d")
        (fx.root / "train.txt").write_text("train/0001TP_006690.png a.png b.png\n")
        with pytest.raises(DatasetError, match=r"train\.txt:1: expected"):
            create_dataset("listfile", fx.root, "train")


@pytest.mark.shared
def test_listfile_reads_camvid_list_files_like_the_camvid_reader(camvid_root: Path) -> None:
    listed = create_dataset("listfile", camvid_root, "val", taxonomy="camvid11")
    camvid = create_dataset("camvid", camvid_root, "val")
    assert len(listed) == len(camvid) == 101
    assert sorted(p.key for p in listed.pairs) == [p.key for p in camvid.pairs]
    index = [p.key for p in camvid.pairs].index(listed.pairs[0].key)
    np.testing.assert_array_equal(listed[0].label, camvid[index].label)
