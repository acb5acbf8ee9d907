"""nuImages: RLE decoding, the devkit's drawing rule, prepare, and the reader contract."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.common.layouts import LayoutFixture
from benchmarks.common.layouts.nuimages import (
    make_nuimages,
    make_published,
    rle_counts,
    rle_encode,
    rle_string,
)
from labelbridge.data import create_dataset
from labelbridge.data.base import CORRUPT, SIZE_MISMATCH, SampleError
from labelbridge.data.prepare import prepare_dataset
from labelbridge.data.readers.nuimages import NuImages, decode_mask, rle_counts_from_string
from labelbridge.errors import DatasetError
from labelbridge.taxonomy import load_taxonomy
from reader_contract import ReaderContract

FRONT = "samples/CAM_FRONT/n008-2018-09-18-14-54-39-0400__CAM_FRONT__1537297163912404"


class TestNuImages(ReaderContract):
    layout = "nuimages"


# ---------------------------------------------------------------------------- RLE
# 5x8 mask, runs (column-major, zeros first) 0, 33, 2, 1, 4. Compressed string worked
# out by hand from maskApi.c rleToString: '0' (0), 'Q1' (33 = 1 | 1<<5, continuation),
# '2' (2), 'PO' (1 - 33 = -32: two characters, sign bit in the last), '2' (4 - 2).
HAND_STRING = b"0Q12PO2"
HAND_BASE64 = "MFExMlBPMg=="
HAND_MASK = np.array(
    [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1, 0, 0],
    ],
    dtype=np.uint8,
)


def test_decode_hand_made_mask() -> None:
    assert base64.b64encode(HAND_STRING).decode() == HAND_BASE64
    assert rle_counts_from_string(HAND_STRING).tolist() == [0, 33, 2, 1, 4]
    got = decode_mask({"size": [5, 8], "counts": HAND_BASE64})
    assert got.dtype == np.uint8 and got.shape == (5, 8)
    np.testing.assert_array_equal(got, HAND_MASK)
    # the fixture's encoder gives the same string
    assert rle_counts(HAND_MASK) == [0, 33, 2, 1, 4]
    assert rle_string([0, 33, 2, 1, 4]) == HAND_STRING


@pytest.mark.parametrize(
    ("counts", "size", "match"),
    [
        # "23111" is runs 2, 3, 1, 1+3, 1+1 (deltas from two back): 12 pixels, not 9
        (base64.b64encode(b"23111").decode(), [3, 3], "sum to 12, not 3x3 = 9"),
        (base64.b64encode(b"2\x7f").decode(), [3, 3], "not an RLE character"),
        (base64.b64encode(b"2Q").decode(), [3, 3], "ends inside a value"),
        ("not base64!", [3, 3], "not a"),
    ],
)
def test_decode_rejects_bad_masks(counts: str, size: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decode_mask({"size": size, "counts": counts})


def test_decoder_matches_pycocotools() -> None:
    mask_api = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(7)
    for h, w, p in [(1, 1, 0.5), (6, 8, 0.3), (37, 23, 0.5), (90, 160, 0.02), (64, 64, 0.97)]:
        for _ in range(5):
            mask = (rng.random((h, w)) < p).astype(np.uint8)
            ref = mask_api.encode(np.asfortranarray(mask))
            record = {"size": [h, w], "counts": base64.b64encode(ref["counts"]).decode()}
            np.testing.assert_array_equal(decode_mask(record), mask)
            assert rle_encode(mask) == record  # the fixture's encoder agrees too


# ---------------------------------------------------------------------------- prepare
@pytest.fixture
def fx(tmp_path: Path) -> LayoutFixture:
    return make_nuimages(tmp_path / "nuimages")


def _label(fx: LayoutFixture, key: str) -> np.ndarray:
    return np.asarray(Image.open(fx.files[key][1]), dtype=np.int32)


def test_overlap_rule(fx: LayoutFixture) -> None:
    # surfaces in table order (driveable 24, then ego 31 over it), then objects by
    # token: the adult (2, token 0...) before the car (17, token f...), though the car
    # comes first in object_ann.json; the traffic cone has no mask and is not drawn.
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0, 17, 17, 17, 17, 0, 0, 0],
            [0, 17, 17, 17, 17, 2, 2, 0],
            [24, 17, 17, 17, 17, 2, 2, 24],
            [24, 17, 17, 17, 17, 2, 2, 24],
            [31, 31, 31, 2, 2, 2, 2, 31],
        ],
        dtype=np.int32,
    )
    np.testing.assert_array_equal(_label(fx, FRONT), expected)
    with Image.open(fx.files[FRONT][1]) as im:
        assert im.mode == "L"


def test_category_index_is_the_devkit_mapping(fx: LayoutFixture) -> None:
    categories = json.loads(
        (fx.files[FRONT][0].parents[2] / "v1.0-train/category.json").read_text()
    )
    # nuimages/utils/utils.py name_to_index_mapping: sorted names from 1, two fixed ones
    names = sorted(c["name"] for c in categories)
    devkit = {
        n: i
        for i, n in enumerate(
            [n for n in names if n not in ("vehicle.ego", "flat.driveable_surface")], start=1
        )
    }
    devkit.update({"flat.driveable_surface": 24, "vehicle.ego": 31})
    assert sorted(devkit.values()) == [*range(1, 25), 31]
    tax = {c.name: c.id for c in load_taxonomy("nuimages").classes if c.id != 0}
    assert tax == devkit
    assert (devkit["vehicle.car"], devkit["vehicle.truck"], devkit["animal"]) == (17, 23, 1)
    back = "samples/CAM_BACK/n008-2018-09-18-14-54-39-0400__CAM_BACK__1537297164437525"
    assert set(np.unique(_label(fx, back)).tolist()) == {0, 23, 24}


def test_prepare_resume_skips_done_files(fx: LayoutFixture) -> None:
    published = fx.files[FRONT][0].parents[2]
    before = {p: p.read_bytes() for p in fx.root.rglob("*.png")}
    again = prepare_dataset("nuimages", published, fx.root, progress=False)
    assert [(s.split, s.tasks, s.already_done, s.converted) for s in again.splits] == [
        ("v1.0-train", 3, 3, 0),
        ("v1.0-val", 2, 2, 0),
        ("v1.0-test", 1, 1, 0),
    ]  # v1.0-mini is not in the fixture: only the versions present are prepared
    label = fx.files[FRONT][1]
    label.unlink()
    resumed = prepare_dataset("nuimages", published, fx.root, progress=False)
    assert [(s.split, s.converted, s.files_written) for s in resumed.splits[:1]] == [
        ("v1.0-train", 1, 1)
    ]
    assert {p: p.read_bytes() for p in fx.root.rglob("*.png")} == before


def test_lists_hold_key_frames_only(fx: LayoutFixture) -> None:
    listed = (fx.root / "lists/v1.0-train.txt").read_text().splitlines()
    assert listed == [f"{k}.jpg" for k in fx.keys["v1.0-train"]]
    published = fx.files[FRONT][0].parents[2]
    assert any((published / "sweeps").rglob("*.jpg"))
    assert not (fx.root / "semantic/v1.0-train/sweeps").exists()
    assert not (fx.root / "semantic/v1.0-test").exists()


def _published_copy(tmp_path: Path) -> Path:
    root = tmp_path / "published"
    make_published(root)
    return root


def test_bad_mask_named_then_skipped(tmp_path: Path) -> None:
    root = _published_copy(tmp_path)
    table = root / "v1.0-train/object_ann.json"
    rows = json.loads(table.read_text())
    victim = next(r for r in rows if r["mask"] is not None)
    victim["mask"]["counts"] = base64.b64encode(b"23111").decode()
    table.write_text(json.dumps(rows))
    with pytest.raises(SampleError, match=victim["token"]) as info:
        prepare_dataset("nuimages", root, tmp_path / "out", progress=False)
    assert info.value.kind == CORRUPT and info.value.path == str(table)
    report = prepare_dataset(
        "nuimages", root, tmp_path / "out2", splits=["v1.0-train"], on_error="skip", progress=False
    )
    (train,) = report.splits
    assert (train.tasks, train.converted, len(train.skipped)) == (3, 2, 1)
    assert str(table) in train.skipped[0].problem


def test_mask_size_differing_from_image_is_reported(tmp_path: Path) -> None:
    root = _published_copy(tmp_path)
    table = root / "v1.0-val/surface_ann.json"
    rows = json.loads(table.read_text())
    rows[0]["mask"] = rle_encode(np.ones((7, 8), np.uint8))
    table.write_text(json.dumps(rows))
    with pytest.raises(SampleError, match="is 8x7, the image 8x6") as info:
        prepare_dataset("nuimages", root, tmp_path / "out", splits=["v1.0-val"], progress=False)
    assert info.value.kind == SIZE_MISMATCH and info.value.path == str(table)


def test_unknown_category_stops_prepare(tmp_path: Path) -> None:
    root = _published_copy(tmp_path)
    table = root / "v1.0-val/category.json"
    rows = json.loads(table.read_text())
    rows[0]["name"] = "vehicle.hovercraft"
    table.write_text(json.dumps(rows))
    with pytest.raises(DatasetError, match="vehicle.hovercraft"):
        prepare_dataset("nuimages", root, tmp_path / "out", splits=["v1.0-val"], progress=False)


def test_root_without_versions_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no nuImages table folder"):
        prepare_dataset("nuimages", tmp_path / "empty", tmp_path / "out", progress=False)


# ---------------------------------------------------------------------------- reader
def test_published_root_asks_for_prepare(fx: LayoutFixture) -> None:
    published = fx.files[FRONT][0].parents[2]
    with pytest.raises(DatasetError, match="labelbridge datasets prepare nuimages --root"):
        create_dataset("nuimages", published, "v1.0-train")


def test_unprepared_split_named(fx: LayoutFixture) -> None:
    with pytest.raises(DatasetError, match="lists/v1.0-mini.txt: split 'v1.0-mini' was not"):
        create_dataset("nuimages", fx.root, "v1.0-mini")


def test_available_splits(fx: LayoutFixture) -> None:
    published = fx.files[FRONT][0].parents[2]
    expected = ("v1.0-train", "v1.0-val", "v1.0-test")
    assert NuImages.available_splits(fx.root) == expected
    assert NuImages.available_splits(published) == expected
    shutil.rmtree(published / "v1.0-val")
    assert NuImages.available_splits(published) == ("v1.0-train", "v1.0-test")


def test_images_from_the_source_root(fx: LayoutFixture) -> None:
    ds = create_dataset("nuimages", fx.root, "v1.0-train")
    published = fx.files[FRONT][0].parents[2]
    assert ds.prepared and ds.source_root == published.resolve()
    sample = ds[1]
    assert sample.key == FRONT
    assert sample.image_path == published.resolve() / f"{FRONT}.jpg"
    assert sample.label_path == fx.root / "semantic/v1.0-train" / f"{FRONT}.png"
