"""``check_dataset`` and ``labelbridge datasets check|list``: on fixtures with every kind
of problem, and on the real datasets (skipped where ../shared is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.common.layouts import (
    H,
    W,
    make_camvid,
    make_folder,
    make_idd_lite,
    make_rugd,
    write_id_label,
)
from labelbridge.cli import main
from labelbridge.data.checks import DatasetReport, check_dataset
from labelbridge.errors import DatasetError, UserError


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
        raise SystemExit(0)
    return int(info.value.code or 0), capsys.readouterr().out


# ---------------------------------------------------------------------------- fixtures
def test_clean_fixture_histogram_is_exact(tmp_path: Path) -> None:
    fx = make_camvid(tmp_path / "camvid")
    report = check_dataset("camvid", fx.root)
    assert report.ok and [s.split for s in report.splits] == ["train", "val", "test"]
    train = report.split("train")
    assert (train.images, train.pairs, train.checked, train.unlabelled_images) == (3, 3, 3, 0)
    expected = np.zeros(12, dtype=np.int64)
    for key in fx.keys["train"]:
        expected += np.bincount(fx.labels[key].ravel(), minlength=12)
    assert train.class_histogram == {c.name: int(expected[c.id]) for c in fx.taxonomy.classes}
    assert sum(train.class_histogram.values()) == 3 * W * H
    # three images painted with ids 0, 1, 2 in stripes shifted by one per image: each id
    # covers every pixel position exactly once over the three images
    assert [train.class_histogram[n] for n in ("Sky", "Building", "Pole", "Road")] == [
        W * H,
        W * H,
        W * H,
        0,
    ]


def test_every_problem_kind_is_reported(tmp_path: Path) -> None:
    fx = make_camvid(tmp_path / "camvid")
    keys = fx.keys["train"]
    img0, lab0 = fx.files[keys[0]]
    img1, lab1 = fx.files[keys[1]]
    img2, lab2 = fx.files[keys[2]]
    write_id_label(lab0, np.full((H, W), 42, np.int32))  # unknown id
    write_id_label(lab1, np.zeros((H, W + 2), np.int32))  # size mismatch
    lab2.write_bytes(lab2.read_bytes()[:40])  # truncated label
    val_image, val_label = fx.files[fx.keys["val"][0]]
    val_label.unlink()  # the only val image loses its label
    (fx.root / "test" / "broken.jpg").write_bytes(b"no image")  # unreadable image ...
    write_id_label(
        fx.root / "testannot" / "broken.png", np.zeros((H, W), np.int32)
    )  # ... with a label

    report = check_dataset("camvid", fx.root)
    assert not report.ok
    train = report.split("train")
    assert train.unknown_ids == {str(lab0): [42]}
    assert [p.path for p in train.size_mismatches] == [str(lab1)]
    assert f"label {W + 2}x{H} vs image" in train.size_mismatches[0].problem
    assert [p.path for p in train.unreadable] == [str(lab2)]
    assert train.num_problems == 3
    val = report.split("val")
    assert val.error is not None and "no usable images" in val.error and str(val_image) in val.error
    test = report.split("test")
    assert [p.path for p in test.unreadable] == [str(fx.root / "test" / "broken.jpg")]
    assert report.num_problems == 3 + 1 + 1


def test_images_without_labels_counted(tmp_path: Path) -> None:
    fx = make_idd_lite(tmp_path / "idd_lite")
    image, label = fx.files[fx.keys["train"][0]]
    label.unlink()
    report = check_dataset("idd_lite", fx.root, ["train", "test"])
    train, test = report.split("train"), report.split("test")
    assert (train.images, train.pairs, train.images_without_labels) == (3, 2, [str(image)])
    assert (test.labelled, test.images, test.pairs, test.unlabelled_images, test.num_problems) == (
        False,
        2,
        0,
        2,
        0,
    )
    assert test.class_histogram == {}
    assert report.num_problems == 1


def test_unknown_colours_reported(tmp_path: Path) -> None:
    fx = make_rugd(tmp_path / "rugd")
    label = fx.files[fx.keys["val"][0]][1]
    rgb = np.array(Image.open(label).convert("RGB"))
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(label)
    report = check_dataset("rugd", fx.root, ["val"])
    assert report.split("val").unknown_ids == {str(label): ["(1, 2, 3)"]}


def test_sample_opens_a_subset(tmp_path: Path) -> None:
    fx = make_folder(tmp_path / "world")
    report = check_dataset("folder", fx.root, sample=1)
    assert [s.split for s in report.splits] == ["train", "unlabelled", "val"]
    train = report.split("train")
    assert (train.pairs, train.checked) == (2, 1)
    assert sum(train.class_histogram.values()) == W * H
    assert report.taxonomy == "<root>/taxonomy.yaml"


def test_verify_images_finds_truncated_image(tmp_path: Path) -> None:
    fx = make_camvid(tmp_path / "camvid")
    image = fx.files[fx.keys["train"][1]][0]
    image.write_bytes(image.read_bytes()[:-60])  # header intact, data cut
    assert check_dataset("camvid", fx.root, ["train"]).ok  # header only: not seen
    report = check_dataset("camvid", fx.root, ["train"], verify_images=True)
    assert [p.path for p in report.split("train").unreadable] == [str(image)]


def test_unknown_split_and_dataset(tmp_path: Path) -> None:
    fx = make_camvid(tmp_path / "camvid")
    with pytest.raises(DatasetError, match=r"has no split\(s\) \['training'\]"):
        check_dataset("camvid", fx.root, ["training"])
    with pytest.raises(UserError, match="unknown dataset 'nope'"):
        check_dataset("nope", fx.root)


def test_cli_check_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx = make_camvid(tmp_path / "camvid")
    code, out = run_cli(["datasets", "check", "camvid", "--root", str(fx.root), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True and [s["pairs"] for s in data["splits"]] == [3, 1, 1]
    fx.files[fx.keys["val"][0]][1].unlink()
    code, out = run_cli(
        ["datasets", "check", "camvid", "--root", str(fx.root), "--split", "val"], capsys
    )
    assert code == 1
    assert "val: ERROR" in out and "1 problems found" in out
    code, _ = run_cli(["datasets", "check", "camvid", "--root", str(tmp_path / "absent")], capsys)
    assert code == 2


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(["datasets", "list", "--json"], capsys)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["datasets"]}
    assert rows["idd_lite"]["taxonomy"] == "idd_level1"
    assert rows["idd_lite"]["unlabelled_splits"] == ["test"]
    assert rows["ycor"]["splits"] == ["train", "valid"]
    assert {
        "camvid",
        "cityscapes",
        "kitti",
        "mapillary",
        "bdd100k",
        "idd",
        "rugd",
        "rellis3d",
        "goose",
        "wilddash2",
        "folder",
    } <= set(rows)
    code, out = run_cli(["datasets", "list"], capsys)
    assert code == 0 and "test*" in out


# ---------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def camvid_report(camvid_root: Path) -> DatasetReport:
    return check_dataset("camvid", camvid_root)


@pytest.mark.shared
def test_real_camvid(camvid_report: DatasetReport) -> None:
    assert camvid_report.ok
    assert [(s.split, s.pairs) for s in camvid_report.splits] == [
        ("train", 367),
        ("val", 101),
        ("test", 233),
    ]
    train = camvid_report.split("train")
    assert sum(train.class_histogram.values()) == 367 * 480 * 360
    ranked = sorted(train.class_histogram, key=train.class_histogram.get, reverse=True)
    assert ranked[:3] == ["Road", "Building", "Sky"]
    assert min(train.class_histogram.values()) > 0  # every class occurs in train


@pytest.mark.shared
def test_real_idd_lite(idd_lite_root: Path) -> None:
    report = check_dataset("idd_lite", idd_lite_root)
    assert report.ok
    assert [(s.split, s.pairs, s.unlabelled_images) for s in report.splits] == [
        ("train", 1403, 0),
        ("val", 204, 0),
        ("test", 0, 404),
    ]
    train = report.split("train")
    ranked = sorted(train.class_histogram, key=train.class_histogram.get, reverse=True)
    assert ranked[:3] == ["drivable", "far objects", "sky"]
    assert ranked[-1] == "ignore"  # id 255 is rare in IDD-Lite (under 0.02% of train pixels)
    assert sum(train.class_histogram.values()) == 1403 * 320 * 227


@pytest.mark.shared
def test_real_ycor_cli_json(ycor_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(["datasets", "check", "ycor", "--root", str(ycor_root), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert [(s["split"], s["pairs"]) for s in data["splits"]] == [("train", 931), ("valid", 145)]
    hist = data["splits"][0]["class_histogram"]
    assert max(hist, key=hist.get) == "high vegetation"
    assert sum(hist.values()) == 931 * 512 * 272
