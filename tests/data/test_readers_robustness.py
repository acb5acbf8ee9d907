"""Bad files (issue 9 item 1): every case raises a DatasetError naming the file and the
problem, or under ``on_error="skip"`` is recorded and dropped; never a wrong label.

Tests run as root, for whom ``chmod 000`` does not make a file unreadable; an
unreadable file is simulated by a folder in place of the file (the open fails with
IsADirectoryError, as PermissionError would, and is reported as ``unreadable``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.common.layouts import (
    H,
    LayoutFixture,
    W,
    make_camvid,
    make_folder,
    make_rugd,
    write_id_label,
)
from labelbridge.data import create_dataset
from labelbridge.data.base import SampleError, SegmentationDataset
from labelbridge.errors import DatasetError


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.fixture
def camvid(tmp_path: Path) -> LayoutFixture:
    return make_camvid(tmp_path / "camvid")


def train_files(fx: LayoutFixture, i: int) -> tuple[Path, Path]:
    image, label = fx.files[fx.keys["train"][i]]
    assert label is not None
    return image, label


def assert_raises_then_skips(
    fx: LayoutFixture, bad_index: int, path: Path, kind: str, message: str
) -> None:
    """Loading sample ``bad_index`` raises naming ``path``; skipping drops exactly it."""
    ds = create_dataset(fx.dataset, fx.root, "train", taxonomy=fx.taxonomy)
    with pytest.raises(SampleError, match=message) as info:
        ds.load(bad_index)
    assert str(path) in str(info.value)
    assert info.value.kind == kind and info.value.path == str(path)
    with pytest.raises(DatasetError):
        list(ds.iter_samples())

    ds = create_dataset(fx.dataset, fx.root, "train", taxonomy=fx.taxonomy, on_error="skip")
    samples = list(ds.iter_samples())
    good = [k for j, k in enumerate(fx.keys["train"]) if j != bad_index]
    assert [s.key for s in samples] == good
    for s in samples:  # the others are untouched
        np.testing.assert_array_equal(s.label, fx.labels[s.key])
    assert len(ds.skipped) == 1
    assert ds.skipped[0].path == str(fx.files[fx.keys["train"][bad_index]][0])
    assert ds.skipped[0].kind == kind and str(path) in ds.skipped[0].problem


def test_truncated_image(camvid: LayoutFixture) -> None:
    image, _ = train_files(camvid, 1)  # a JPEG
    truncate(image)
    assert_raises_then_skips(camvid, 1, image, "corrupt", "cannot decode image file")


def test_truncated_png_image(camvid: LayoutFixture) -> None:
    image, _ = train_files(camvid, 0)  # a PNG
    truncate(image, keep=0.8)
    assert_raises_then_skips(camvid, 0, image, "corrupt", "truncated or corrupt")


def test_garbage_image(camvid: LayoutFixture) -> None:
    image, _ = train_files(camvid, 2)
    image.write_bytes(b"this is not a picture")
    assert_raises_then_skips(camvid, 2, image, "corrupt", "cannot decode image file")


def test_truncated_label_png(camvid: LayoutFixture) -> None:
    _, label = train_files(camvid, 0)
    truncate(label, keep=0.6)
    assert_raises_then_skips(camvid, 0, label, "corrupt", "cannot decode label file")


def test_label_id_not_in_taxonomy(camvid: LayoutFixture) -> None:
    _, label = train_files(camvid, 2)
    ids = camvid.labels[camvid.keys["train"][2]].copy()
    ids[0, 0] = 42
    write_id_label(label, ids)
    assert_raises_then_skips(
        camvid, 2, label, "unknown_label", r"label ids \[42\] are not in taxonomy 'camvid11'"
    )


def test_unknown_id_as_ignore_is_explicit(camvid: LayoutFixture) -> None:
    _, label = train_files(camvid, 2)
    ids = camvid.labels[camvid.keys["train"][2]].copy()
    ids[0, 0] = 42
    write_id_label(label, ids)
    ds = create_dataset("camvid", camvid.root, "train", unknown_as_ignore=True)
    out = ds.load(2).label
    expected = ids.copy()
    expected[0, 0] = 11  # camvid11's ignored class "Unlabelled"
    np.testing.assert_array_equal(out, expected)


def test_label_colour_not_in_taxonomy(tmp_path: Path) -> None:
    fx = make_rugd(tmp_path / "rugd")
    key = fx.keys["val"][0]
    label = fx.files[key][1]
    rgb = np.array(Image.open(label).convert("RGB"))
    rgb[2, 3] = (1, 2, 3)
    Image.fromarray(rgb).save(label)
    ds = create_dataset("rugd", fx.root, "val", taxonomy=fx.taxonomy)
    with pytest.raises(
        SampleError, match=r"colours \[\(1, 2, 3\)\] are not in the palette"
    ) as info:
        ds.load(0)
    assert info.value.kind == "unknown_label" and str(label) in str(info.value)
    skipping = create_dataset("rugd", fx.root, "val", taxonomy=fx.taxonomy, on_error="skip")
    assert [s.key for s in skipping.iter_samples()] == fx.keys["val"][1:]
    assert [r.kind for r in skipping.skipped] == ["unknown_label"]


def test_colour_label_where_ids_expected(camvid: LayoutFixture) -> None:
    _, label = train_files(camvid, 0)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(label)
    assert_raises_then_skips(camvid, 0, label, "unknown_label", r"label file is colour \(RGB\)")


def test_size_mismatch(camvid: LayoutFixture) -> None:
    _, label = train_files(camvid, 1)
    write_id_label(label, np.zeros((H + 1, W), np.int32))
    assert_raises_then_skips(
        camvid, 1, label, "size_mismatch", f"label size {W}x{H + 1} differs from image"
    )


def test_unreadable_label(camvid: LayoutFixture) -> None:
    _, label = train_files(camvid, 1)
    replace_with_folder(label)
    assert_raises_then_skips(
        camvid, 1, label, "unreadable", "cannot read label file: it is a directory"
    )


def test_unreadable_image(tmp_path: Path) -> None:
    fx = make_folder(tmp_path / "world")
    image, _ = fx.files[fx.keys["train"][0]]
    replace_with_folder(image)
    assert_raises_then_skips(
        fx, 0, image, "unreadable", "cannot read image file: it is a directory"
    )


def test_image_deleted_after_listing(camvid: LayoutFixture) -> None:
    image, _ = train_files(camvid, 0)
    ds = create_dataset("camvid", camvid.root, "train")
    image.unlink()
    with pytest.raises(SampleError, match="image file not found") as info:
        ds.load(0)
    assert info.value.kind == "missing_file" and str(image) in str(info.value)


def test_missing_label_recorded_while_listing(camvid: LayoutFixture) -> None:
    image, label = train_files(camvid, 1)
    label.unlink()
    with pytest.raises(
        SampleError,
        match=r"no label file for this image \(expected .*trainannot/0001TP_000020\.png\)",
    ) as info:
        create_dataset("camvid", camvid.root, "train")
    assert str(image) in str(info.value) and info.value.kind == "missing_label"
    ds = create_dataset("camvid", camvid.root, "train", on_error="skip")
    assert len(ds) == 2
    assert [(r.path, r.kind) for r in ds.skipped] == [(str(image), "missing_label")]
    assert [s.key for s in ds.iter_samples()] == [camvid.keys["train"][0], camvid.keys["train"][2]]


def test_empty_split(camvid: LayoutFixture) -> None:
    for p in (camvid.root / "val").iterdir():
        p.unlink()
    with pytest.raises(
        DatasetError, match=r"camvid: split 'val' of dataset 'camvid' has no usable images"
    ):
        create_dataset("camvid", camvid.root, "val")


def test_split_with_only_missing_labels_says_why(camvid: LayoutFixture) -> None:
    shutil.rmtree(camvid.root / "valannot")
    (camvid.root / "valannot").mkdir()
    with pytest.raises(DatasetError, match=r"no usable images \(1 images skipped: .*no label file"):
        create_dataset("camvid", camvid.root, "val", on_error="skip")


def test_bad_on_error_value(camvid: LayoutFixture) -> None:
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        SegmentationDataset.__init__(
            object.__new__(SegmentationDataset), camvid.root, "train", on_error="ignore"
        )  # type: ignore[arg-type]


def test_permission_denied_is_unreadable(
    camvid: LayoutFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # root ignores file modes, so the PermissionError an ordinary user gets is injected
    import labelbridge.data.base as base

    _, label = train_files(camvid, 0)
    real_open = base.Image.open

    def deny(path, *args, **kwargs):
        if Path(path) == label:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(base.Image, "open", deny)
    assert_raises_then_skips(
        camvid, 0, label, "unreadable", "cannot read label file: permission denied"
    )
