"""COCO panoptic and WildDash 2 readers and preparers (panoptic PNG + JSON segment table)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.common.layouts import LayoutFixture
from benchmarks.common.layouts.panoptic import (
    COCO_TRAIN_URBAN,
    PREPARED_LAYOUTS,
    make_coco_panoptic,
    make_wilddash2_panoptic,
    panoptic_skeleton,
)
from labelbridge.data import create_dataset
from labelbridge.data.base import SampleError
from labelbridge.data.prepare import prepare_dataset
from labelbridge.data.readers._panoptic import rgb_to_segment_ids
from labelbridge.errors import DatasetError
from reader_contract import ReaderContract


class TestCocoPanoptic(ReaderContract):
    layout = "coco_panoptic"


class PreparedContract(ReaderContract):
    """The contract on a prepared folder (labels there, images in the source root)."""

    @pytest.fixture
    def fx(self, tmp_path: Path) -> LayoutFixture:
        return PREPARED_LAYOUTS[self.layout](tmp_path / self.layout)


class TestCocoPanopticPrepared(PreparedContract):
    layout = "coco_panoptic_prepared"


class TestWildDash2Panoptic(ReaderContract):
    layout = "wilddash2_panoptic"


class TestWildDash2Prepared(PreparedContract):
    layout = "wilddash2_prepared"


# ---------------------------------------------------------------------------- hand-built PNG
# Segment ids and their RGB: 197121 = (1, 2, 3) person; 65541 = (5, 0, 1) person crowd;
# 200 = (200, 0, 0) rug-merged (stuff); 0 = VOID.
SEGMENTS = [
    {"id": 197121, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 2, 2], "area": 4},
    {"id": 65541, "category_id": 1, "iscrowd": 1, "bbox": [2, 0, 2, 1], "area": 2},
    {"id": 200, "category_id": 200, "iscrowd": 0, "bbox": [0, 2, 4, 1], "area": 4},
]
RGB = np.array(
    [
        [(1, 2, 3), (1, 2, 3), (5, 0, 1), (5, 0, 1)],
        [(1, 2, 3), (1, 2, 3), (0, 0, 0), (0, 0, 0)],
        [(200, 0, 0), (200, 0, 0), (200, 0, 0), (200, 0, 0)],
    ],
    dtype=np.uint8,
)
EXPECTED = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [200, 200, 200, 200]], dtype=np.int32)


def write_coco_by_hand(root: Path, segments: list[dict], rgb: np.ndarray = RGB) -> Path:
    """One val image 000000000139 (4x3) with the panoptic PNG ``rgb``; returns the PNG."""
    h, w = rgb.shape[:2]
    (root / "val2017").mkdir(parents=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(root / "val2017/000000000139.jpg")
    data = panoptic_skeleton([(139, "000000000139.jpg")], [])
    data["images"][0].update(width=w, height=h)
    data["annotations"][0]["segments_info"] = segments
    (root / "annotations/panoptic_val2017").mkdir(parents=True)
    (root / "annotations/panoptic_val2017.json").write_text(json.dumps(data))
    png = root / "annotations/panoptic_val2017/000000000139.png"
    Image.fromarray(rgb, mode="RGB").save(png)
    return png


def test_segment_id_decoding() -> None:
    ids = rgb_to_segment_ids(RGB)
    assert ids[0, 0] == 1 + 2 * 256 + 3 * 65536 == 197121
    assert ids[0, 2] == 65541 and ids[2, 0] == 200 and ids[1, 3] == 0


def test_three_segments_give_the_exact_semantic_map(tmp_path: Path) -> None:
    # the crowd segment (iscrowd 1) keeps its category, as detectron2's conversion does
    write_coco_by_hand(tmp_path, SEGMENTS)
    sample = create_dataset("coco_panoptic", tmp_path, "val")[0]
    assert sample.key == "val2017/000000000139"
    np.testing.assert_array_equal(sample.label, EXPECTED)
    assert sample.label.dtype == np.int32


def test_segment_absent_from_segments_info_is_named(tmp_path: Path) -> None:
    png = write_coco_by_hand(tmp_path, SEGMENTS[:2])  # 200 (rug-merged) dropped from the table
    ds = create_dataset("coco_panoptic", tmp_path, "val")
    with pytest.raises(SampleError, match=r"segment ids \[200\].*segments_info") as info:
        ds[0]
    assert info.value.path == str(png) and info.value.kind == "unknown_label"
    assert "panoptic_val2017.json" in str(info.value)


def test_png_without_annotation_is_named(tmp_path: Path) -> None:
    png = write_coco_by_hand(tmp_path, SEGMENTS)
    json_path = tmp_path / "annotations/panoptic_val2017.json"
    data = json.loads(json_path.read_text())
    data["annotations"] = []
    json_path.write_text(json.dumps(data))
    ds = create_dataset("coco_panoptic", tmp_path, "val")
    with pytest.raises(SampleError, match="no annotation") as info:
        ds[0]
    assert info.value.path == str(png)


def test_detectron2_png_folder_in_root_is_read(tmp_path: Path) -> None:
    png = write_coco_by_hand(tmp_path, SEGMENTS)
    moved = tmp_path / "panoptic_val2017"
    png.parent.rename(moved)
    sample = create_dataset("coco_panoptic", tmp_path, "val")[0]
    assert sample.label_path == moved / png.name
    np.testing.assert_array_equal(sample.label, EXPECTED)


def test_prepared_png_holds_the_category_ids(tmp_path: Path) -> None:
    write_coco_by_hand(tmp_path / "pub", SEGMENTS)
    report = prepare_dataset("coco_panoptic", tmp_path / "pub", tmp_path / "out", splits=["val"])
    assert report.ok and report.splits[0].converted == 1
    with Image.open(tmp_path / "out/panoptic_semseg_val2017/000000000139.png") as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), EXPECTED)


def test_malformed_json_is_named(tmp_path: Path) -> None:
    write_coco_by_hand(tmp_path, SEGMENTS)
    json_path = tmp_path / "annotations/panoptic_val2017.json"
    json_path.write_text('{"images": []}')
    with pytest.raises(DatasetError, match="not a COCO panoptic JSON") as info:
        create_dataset("coco_panoptic", tmp_path, "val")
    assert str(json_path) in str(info.value)


def test_root_panoptic_semseg_of_other_tools_is_not_read(tmp_path: Path) -> None:
    # Mask2Former's panoptic_semseg_* hold contiguous ids; a published root decodes the PNGs
    write_coco_by_hand(tmp_path, SEGMENTS)
    other = tmp_path / "panoptic_semseg_val2017"
    other.mkdir()
    Image.fromarray(np.full((3, 4), 2, np.uint8)).save(other / "000000000139.png")
    np.testing.assert_array_equal(
        create_dataset("coco_panoptic", tmp_path, "val")[0].label, EXPECTED
    )


# ---------------------------------------------------------------------------- prepare vs decode
@pytest.mark.parametrize(
    ("maker", "dataset", "splits"),
    [
        (make_coco_panoptic, "coco_panoptic", ["train", "val"]),
        (make_wilddash2_panoptic, "wilddash2", ["public"]),
    ],
)
def test_prepared_equals_on_the_fly(tmp_path: Path, maker, dataset: str, splits: list) -> None:
    pub = maker(tmp_path / "pub")
    report = prepare_dataset(dataset, pub.root, tmp_path / "out", progress=False)
    assert report.ok
    for split in splits:
        direct = list(create_dataset(dataset, pub.root, split).iter_samples())
        prepared = list(create_dataset(dataset, tmp_path / "out", split).iter_samples())
        assert [s.key for s in prepared] == [s.key for s in direct] == pub.keys[split]
        for a, b in zip(direct, prepared, strict=True):
            assert a.image_path == b.image_path
            np.testing.assert_array_equal(a.label, b.label)
            np.testing.assert_array_equal(a.label, pub.labels[a.key])
            assert b.label_path.parent.parent == tmp_path / "out"


def test_wilddash2_prepared_names_are_pano2sem_names(tmp_path: Path) -> None:
    pub = make_wilddash2_panoptic(tmp_path / "pub")
    prepare_dataset("wilddash2", pub.root, tmp_path / "out", progress=False)
    assert sorted(p.name for p in (tmp_path / "out/labels").iterdir()) == [
        "ad0000_labelIds.png",
        "at0001_labelIds.png",
        "de0103_labelIds.png",
    ]


def test_wilddash2_semantic_labels_take_precedence(tmp_path: Path) -> None:
    pub = make_wilddash2_panoptic(tmp_path / "pub")
    labels = pub.root / "labels"
    labels.mkdir()
    for name in ("ad0000", "at0001", "de0103"):
        Image.fromarray(np.full((6, 8), 7, np.uint8)).save(labels / f"{name}_labelIds.png")
    ds = create_dataset("wilddash2", pub.root, "public")
    assert [p.label.parent for p in ds.pairs] == [labels] * 3
    assert (ds[0].label == 7).all()


def test_wilddash2_without_labels_or_panoptic_says_so(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="neither labels/ .* nor panoptic.json"):
        create_dataset("wilddash2", tmp_path, "public")


# ---------------------------------------------------------------------------- urban subsets
def test_urban_subset_selects_exactly_the_listed_ids(tmp_path: Path) -> None:
    fx = make_coco_panoptic(tmp_path / "coco")
    ds = create_dataset("coco_panoptic", fx.root, "train_urban")
    assert [p.key for p in ds.pairs] == [f"train2017/{i:012d}" for i in COCO_TRAIN_URBAN]
    assert len(create_dataset("coco_panoptic", fx.root, "train")) == 3
    for s in ds.iter_samples():
        np.testing.assert_array_equal(s.label, fx.labels[s.key])


def test_urban_subset_prepares_only_the_listed_ids(tmp_path: Path) -> None:
    fx = make_coco_panoptic(tmp_path / "coco")
    prepare_dataset("coco_panoptic", fx.root, tmp_path / "out", splits=["train_urban"])
    written = sorted(p.stem for p in (tmp_path / "out/panoptic_semseg_train2017").iterdir())
    assert written == [f"{i:012d}" for i in COCO_TRAIN_URBAN]
    ds = create_dataset("coco_panoptic", tmp_path / "out", "train_urban")
    assert [p.key for p in ds.pairs] == [f"train2017/{i:012d}" for i in COCO_TRAIN_URBAN]
    with pytest.raises(DatasetError, match="no label file"):  # full train was not prepared
        create_dataset("coco_panoptic", tmp_path / "out", "train")


def test_missing_urban_list_tells_where_to_put_it(tmp_path: Path) -> None:
    fx = make_coco_panoptic(tmp_path / "coco")
    (fx.root / "lists/val_urban_subset.txt").unlink()
    with pytest.raises(DatasetError, match="datasets/coco/lists/val_urban_subset.txt") as info:
        create_dataset("coco_panoptic", fx.root, "val_urban")
    assert str(fx.root / "lists/val_urban_subset.txt") in str(info.value)


def test_listed_image_missing_is_named_or_skipped(tmp_path: Path) -> None:
    fx = make_coco_panoptic(tmp_path / "coco")
    (fx.root / "lists/train_urban_subset.txt").write_text("000000000009\n000000000777\n")
    missing = fx.root / "train2017/000000000777.jpg"
    with pytest.raises(DatasetError, match="listed in") as info:
        create_dataset("coco_panoptic", fx.root, "train_urban")
    assert str(missing) in str(info.value)
    ds = create_dataset("coco_panoptic", fx.root, "train_urban", on_error="skip")
    assert [p.key for p in ds.pairs] == ["train2017/000000000009"]
    assert [(r.path, r.kind) for r in ds.skipped] == [(str(missing), "missing_file")]


def test_bad_urban_list_line_is_named(tmp_path: Path) -> None:
    fx = make_coco_panoptic(tmp_path / "coco")
    (fx.root / "lists/train_urban_subset.txt").write_text("000000000009\n9.jpg\n")
    with pytest.raises(DatasetError, match="12-digit"):
        create_dataset("coco_panoptic", fx.root, "train_urban")
