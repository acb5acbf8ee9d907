"""IDD at the polygon label-name level (reader and preparer ``idd_labelids``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from benchmarks.common.layouts import H, LayoutFixture, W, write_id_label, write_image
from benchmarks.common.layouts.idd_polygons import make_published, write_polygons
from labelbridge.data import create_dataset
from labelbridge.data.base import CORRUPT, SIZE_MISMATCH, UNKNOWN_LABEL, SampleError
from labelbridge.data.prepare import PREPARERS, prepare_dataset
from labelbridge.data.readers.idd_labelids import draw_polygons, taxonomy_names
from labelbridge.errors import DatasetError
from labelbridge.taxonomy import load_taxonomy
from reader_contract import ReaderContract

ROAD, CAR, PERSON, BUS, POLEGROUP, POLE, UNLABELED, SKY = 0, 12, 6, 14, 27, 26, 35, 33


class TestIddPolygons(ReaderContract):
    layout = "idd_polygons"


class TestIddPolygonsPrepared(ReaderContract):
    layout = "idd_polygons_prepared"


def _write(path: Path, objects: list[dict], *, height: int = H, width: int = W) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"imgHeight": height, "imgWidth": width, "objects": objects}))
    return path


#: A hand-drawn annotation on an 8x6 image, with the map the toolkit's rules give.
HAND_OBJECTS = [
    {"label": "road", "polygon": [[0, 0], [5, 0], [5, 4], [0, 4]]},  # x 0..5, y 0..4
    {"label": "person", "polygon": [[0, 0], [7, 0], [7, 5], [0, 5]], "deleted": 1},
    {"label": "car", "polygon": [[1, 1], [4, 1], [4, 3], [1, 3]], "deleted": 0},
    {"label": "bus", "polygon": [[3, 2], [5, 2], [5, 2], [3, 2]]},  # over the car, row 2
    {"label": "polegroup", "polygon": [[6, 0], [6, 5], [6, 5]]},  # its own id, column 6
    {"label": "cargroup", "polygon": [[0, 5], [2, 5], [2, 5]]},  # -> car, row 5
]


def hand_expected() -> np.ndarray:
    ids = np.full((H, W), UNLABELED, np.int32)
    ids[0:5, 0:6] = ROAD
    ids[1:4, 1:5] = CAR
    ids[2, 3:6] = BUS
    ids[:, 6] = POLEGROUP
    ids[5, 0:3] = CAR
    return ids


def _names() -> tuple[dict[str, int], int]:
    return taxonomy_names(load_taxonomy("idd_labelids"))


def test_toolkit_ids_and_background() -> None:
    names, background = _names()
    assert background == UNLABELED
    assert (names["road"], names["car"], names["polegroup"], names["pole"]) == (0, 12, 27, 26)
    assert (names["license plate"], names["unlabeled"], len(names)) == (39, 35, 40)


def test_hand_drawn_json_gives_the_toolkit_map(tmp_path: Path) -> None:
    names, background = _names()
    path = _write(tmp_path / "a_gtFine_polygons.json", HAND_OBJECTS)
    got = draw_polygons(path, names, background=background)
    assert got.dtype == np.int32 and got.shape == (H, W)
    np.testing.assert_array_equal(got, hand_expected())


def test_short_polygons_are_skipped(tmp_path: Path) -> None:
    names, background = _names()
    objects = [
        {"label": "sky", "polygon": [[0, 0], [7, 5]]},  # 2 points: skipped by the toolkit
        {"label": "sky", "polygon": [[3, 3]]},
        {"label": "sky", "polygon": []},
    ]
    got = draw_polygons(_write(tmp_path / "s.json", objects), names, background=background)
    assert (got == UNLABELED).all()


def test_hand_drawn_json_read_by_reader_and_prepared(tmp_path: Path) -> None:
    pub = tmp_path / "pub"
    write_image(pub / "leftImg8bit/val/7/frame0001_leftImg8bit.png", np.zeros((H, W, 3), np.uint8))
    _write(pub / "gtFine/val/7/frame0001_gtFine_polygons.json", HAND_OBJECTS)
    (sample,) = create_dataset("idd_labelids", pub, "val").iter_samples()
    np.testing.assert_array_equal(sample.label, hand_expected())
    assert sample.key == "leftImg8bit/val/7/frame0001_leftImg8bit"
    out = tmp_path / "prepared"
    report = prepare_dataset("idd_labelids", pub, out, splits=["val"], progress=False)
    assert report.ok and report.splits[0].converted == 1
    png = out / "gtFine/val/7/frame0001_gtFine_labelids.png"
    with Image.open(png) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), hand_expected())
    ds = create_dataset("idd_labelids", out, "val")
    assert ds.prepared and ds.source_root == pub.resolve()
    (prepared,) = ds.iter_samples()
    assert prepared.label_path == png and prepared.key == sample.key
    assert prepared.image_path == pub.resolve() / "leftImg8bit/val/7/frame0001_leftImg8bit.png"


def test_on_the_fly_equals_prepared(tmp_path: Path) -> None:
    fx = make_published(tmp_path / "pub")
    out = tmp_path / "prepared"
    assert prepare_dataset("idd_labelids", fx.root, out, progress=False).ok
    for split in ("train", "val"):
        fly = list(create_dataset("idd_labelids", fx.root, split).iter_samples())
        prep = list(create_dataset("idd_labelids", out, split).iter_samples())
        assert [s.key for s in fly] == [s.key for s in prep] == fx.keys[split]
        for a, b in zip(fly, prep, strict=True):
            assert a.label_path.name.endswith("_gtFine_polygons.json")
            assert b.label_path.name.endswith("_gtFine_labelids.png")
            np.testing.assert_array_equal(a.label, b.label)
            np.testing.assert_array_equal(a.label, fx.labels[a.key])
    # a second run converts nothing (resumable) and gives the same bytes
    before = {p: p.read_bytes() for p in out.rglob("*.png")}
    again = prepare_dataset("idd_labelids", fx.root, out, progress=False)
    assert sum(s.converted for s in again.splits) == 0
    assert {p: p.read_bytes() for p in out.rglob("*.png")} == before
    test = create_dataset("idd_labelids", out, "test")
    assert [p.key for p in test.pairs] == fx.keys["test"] and test.pairs[0].label is None


def test_toolkit_labelids_png_is_preferred(tmp_path: Path) -> None:
    fx = make_published(tmp_path / "pub")
    key = fx.keys["val"][0]
    json_path = fx.files[key][1]
    png = json_path.with_name(json_path.name.replace("_polygons.json", "_labelids.png"))
    ids = np.full((H, W), 24, np.int32)  # traffic sign everywhere
    write_id_label(png, ids)
    (sample,) = create_dataset("idd_labelids", fx.root, "val").iter_samples()
    assert sample.label_path == png
    np.testing.assert_array_equal(sample.label, ids)


def test_unknown_name_is_named_or_painted_ignore(tmp_path: Path) -> None:
    objects = [
        {"label": "road", "polygon": [[0, 0], [7, 0], [7, 5], [0, 5]]},
        {"label": "ground", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]},  # no toolkit label
    ]
    path = _write(tmp_path / "pub/gtFine/train/1/f_gtFine_polygons.json", objects)
    write_image(
        tmp_path / "pub/leftImg8bit/train/1/f_leftImg8bit.png", np.zeros((H, W, 3), np.uint8)
    )
    ds = create_dataset("idd_labelids", tmp_path / "pub", "train")
    with pytest.raises(SampleError, match="'ground'") as info:
        ds.load(0)
    assert info.value.kind == UNKNOWN_LABEL and info.value.path == str(path)
    sample = create_dataset("idd_labelids", tmp_path / "pub", "train", unknown_as_ignore=True)[0]
    expected = np.full((H, W), ROAD, np.int32)
    expected[0:2, 0:2] = UNLABELED
    np.testing.assert_array_equal(sample.label, expected)
    # the preparer refuses it too, and skips it under on_error="skip"
    with pytest.raises(SampleError, match="ground"):
        prepare_dataset("idd_labelids", tmp_path / "pub", tmp_path / "out", splits=["train"])
    report = prepare_dataset(
        "idd_labelids",
        tmp_path / "pub",
        tmp_path / "out2",
        splits=["train"],
        on_error="skip",
        progress=False,
    )
    assert [(r.path, r.kind) for r in report.splits[0].skipped] == [(str(path), UNKNOWN_LABEL)]


def test_size_and_malformed_json(tmp_path: Path) -> None:
    fx: LayoutFixture = make_published(tmp_path / "pub")
    key = fx.keys["val"][0]
    label = fx.files[key][1]
    data = json.loads(label.read_text())
    data["imgHeight"] += 1
    label.write_text(json.dumps(data))
    with pytest.raises(SampleError, match="differs from image") as info:
        create_dataset("idd_labelids", fx.root, "val")[0]
    assert info.value.kind == SIZE_MISMATCH and info.value.path == str(label)
    names, background = _names()
    for bad in (
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"imgHeight": 6, "imgWidth": 8}),
        json.dumps({"imgHeight": 0, "imgWidth": 8, "objects": []}),
        json.dumps({"imgHeight": 6, "imgWidth": 8, "objects": [{"label": "road"}]}),
        json.dumps(
            {"imgHeight": 6, "imgWidth": 8, "objects": [{"label": "car", "polygon": [["a", 1]]}]}
        ),
    ):
        label.write_text(bad)
        with pytest.raises(SampleError) as info:
            draw_polygons(label, names, background=background)
        assert info.value.kind == CORRUPT and info.value.path == str(label), bad


def test_idd20k_ii_jpg_images(tmp_path: Path) -> None:
    root = tmp_path / "idd20kII"
    write_image(
        root / "leftImg8bit/train/0/frame1899_leftImg8bit.jpg", np.zeros((H, W, 3), np.uint8)
    )
    ids = np.full((H, W), 32, np.int32)
    ids[:2] = SKY
    write_polygons(root / "gtFine/train/0/frame1899_gtFine_polygons.json", ids)
    (sample,) = create_dataset("idd_labelids", root, "train").iter_samples()
    assert sample.key == "leftImg8bit/train/0/frame1899_leftImg8bit"
    np.testing.assert_array_equal(sample.label, ids)


def test_preparer_attributes_and_missing_split(tmp_path: Path) -> None:
    cls = PREPARERS["idd_labelids"]
    assert (cls.required, cls.holds_images, cls.splits) == (False, False, ("train", "val"))
    (tmp_path / "pub").mkdir()
    with pytest.raises(DatasetError, match="no split of 'idd_labelids' found to prepare"):
        prepare_dataset("idd_labelids", tmp_path / "pub", tmp_path / "out", progress=False)
    (tmp_path / "pub/gtFine/val").mkdir(parents=True)  # val downloaded only: train is not tried
    report = prepare_dataset("idd_labelids", tmp_path / "pub", tmp_path / "out", progress=False)
    assert [s.split for s in report.splits] == ["val"]
    with pytest.raises(DatasetError, match="gtFine/train"):
        prepare_dataset(
            "idd_labelids", tmp_path / "pub", tmp_path / "out", splits=["train"], progress=False
        )


def test_matches_cityscapesscripts_drawing(tmp_path: Path, monkeypatch) -> None:
    """cityscapesscripts' json2labelImg (the Cityscapes original of the toolkit's) pointed at
    the IDD names draws the same map (it has no '< 3 points' rule, so none is used here)."""
    pytest.importorskip("cityscapesscripts")
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation import json2labelImg as cs

    names, background = _names()
    monkeypatch.setattr(cs, "name2label", {n: SimpleNamespace(id=i) for n, i in names.items()})
    objects = [
        *HAND_OBJECTS,
        {"label": "sky", "polygon": [[0.4, 0.2], [7.6, 0.7], [4.2, 4.9]]},  # float corners
        {"label": "pole", "polygon": [[7, 5], [2, 3], [7, 0], [5, 2.5]]},  # concave
    ]
    path = _write(tmp_path / "x_gtFine_polygons.json", objects)
    annotation = Annotation()
    annotation.fromJsonFile(str(path))
    theirs = np.asarray(cs.createLabelImage(annotation, "ids"), dtype=np.int32)
    ours = draw_polygons(path, names, background=background)
    np.testing.assert_array_equal(ours, theirs)
    assert {SKY, POLE} <= set(np.unique(ours).tolist())
