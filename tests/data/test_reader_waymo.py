"""Waymo Open Dataset v2 camera segmentation: the preparer on a tiny parquet release
(benchmarks/common/layouts/waymo.py) and the reader of the prepared folder."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install labelbridge[waymo])")

import pyarrow.parquet as pq  # noqa: E402

from benchmarks.common.layouts.waymo import (  # noqa: E402
    DIVISOR,
    THING_ID,
    make_waymo,
    make_waymo_published,
    png16,
)
from labelbridge.data import create_dataset  # noqa: E402
from labelbridge.data.prepare import prepare_dataset  # noqa: E402
from labelbridge.data.readers.waymo import PANOPTIC_COLUMN, WaymoPreparer  # noqa: E402
from labelbridge.errors import DatasetError, UserError  # noqa: E402
from reader_contract import ReaderContract  # noqa: E402

CTX_A = "10017090168044687777_6380_000_6400_000"
CTX_B = "10023947602400723454_1120_000_1140_000"


class TestWaymo(ReaderContract):
    layout = "waymo"


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, dict[str, dict]]:
    root = tmp_path / "published"
    return root, make_waymo_published(root)


def test_semantic_is_panoptic_floor_divided(published, tmp_path: Path) -> None:
    root, frames = published
    prepare_dataset("waymo", root, tmp_path / "out", progress=False)
    stem = f"{CTX_A}_1550083469645130_1"
    # the panoptic label as published: car pixels carry instance ids 999, 1, 2
    table = pq.read_table(root / "training/camera_segmentation" / f"{CTX_A}.parquet")
    row = table.to_pylist()[0]
    assert (row["key.frame_timestamp_micros"], row["key.camera_name"]) == (1550083469645130, 1)
    with Image.open(io.BytesIO(row[PANOPTIC_COLUMN])) as im:
        assert im.mode in ("I;16", "I")
        panoptic = np.asarray(im, dtype=np.int64)
    # frame index 0: stripes (x + y) % 3 of ids [0, 1, 2]; (0, 2) is the first car pixel
    assert panoptic[0, :4].tolist() == [0, 1000, 2999, 0]
    assert panoptic[0, 5] == 2 * DIVISOR + 2 and panoptic[1, 1] == 2 * DIVISOR + 1
    with Image.open(tmp_path / "out/training/semantic" / f"{stem}.png") as im:
        assert im.mode == "L"
        label = np.asarray(im, dtype=np.int64)
    assert label[0, :4].tolist() == [0, 1, THING_ID, 0]
    assert label[0, 5] == THING_ID and label[1, 1] == THING_ID
    np.testing.assert_array_equal(label, panoptic // DIVISOR)
    np.testing.assert_array_equal(label, frames[stem]["semantic"])


def test_unlabelled_frames_left_out_and_counted(published, tmp_path: Path) -> None:
    root, frames = published
    prep = WaymoPreparer(root)
    tasks = prep.tasks("training")
    assert [t.key for t in tasks] == [f"training/{CTX_A}", f"training/{CTX_B}"]
    assert tasks[0].outputs == tuple(
        f"training/{sub}/{CTX_A}_{ts}_{cam}.{ext}"
        for ts, cam in ((1550083469645130, 1), (1550083469645130, 2), (1550083470045260, 1))
        for sub, ext in (("images", "jpg"), ("semantic", "png"))
    )
    assert prep.unlabelled == {"training": 2}
    assert prep.tasks("validation") and prep.unlabelled["validation"] == 1
    prepare_dataset("waymo", root, tmp_path / "out", progress=False)
    ds = create_dataset("waymo", tmp_path / "out", "training")
    assert len(ds) == 4
    listed = {p.image.stem for p in ds.pairs}
    assert (
        f"{CTX_A}_1550083470045260_2" not in listed and f"{CTX_B}_1552440195362591_4" not in listed
    )
    assert not (tmp_path / "out/testing").exists()
    assert sum(f["semantic"] is not None for f in frames.values()) == 5


def test_jpeg_bytes_copied_unchanged(published, tmp_path: Path) -> None:
    root, frames = published
    prepare_dataset("waymo", root, tmp_path / "out", progress=False)
    written = sorted((tmp_path / "out").glob("*/images/*.jpg"))
    assert len(written) == 5
    for path in written:
        assert path.read_bytes() == frames[path.stem]["jpeg"]


def test_resume_skips_finished_contexts(published, tmp_path: Path) -> None:
    root, _ = published
    out = tmp_path / "out"
    first = prepare_dataset("waymo", root, out, splits=["training"], progress=False)
    assert (first.splits[0].converted, first.splits[0].files_written) == (2, 8)
    done = out / "training/images" / f"{CTX_A}_1550083469645130_1.jpg"
    before = done.stat().st_mtime_ns
    (out / "training/semantic" / f"{CTX_B}_1552440195362591_1.png").unlink()
    again = prepare_dataset("waymo", root, out, splits=["training"], progress=False)
    s = again.splits[0]
    assert (s.tasks, s.already_done, s.converted, s.files_written) == (2, 1, 1, 2)
    assert done.stat().st_mtime_ns == before
    assert len(create_dataset("waymo", out, "training")) == 4


def test_missing_camera_image_file_named(published, tmp_path: Path) -> None:
    root, _ = published
    missing = root / "training/camera_image" / f"{CTX_B}.parquet"
    missing.unlink()
    with pytest.raises(DatasetError, match="camera_image file of context") as info:
        prepare_dataset("waymo", root, tmp_path / "out", progress=False)
    assert str(missing) in str(info.value)


def test_corrupt_panoptic_png_named_then_skipped(published, tmp_path: Path) -> None:
    root, _ = published
    seg = root / "training/camera_segmentation" / f"{CTX_B}.parquet"
    table = pq.read_table(seg)
    bad = table.set_column(
        table.schema.get_field_index(PANOPTIC_COLUMN),
        table.schema.field(PANOPTIC_COLUMN),
        [[png16(np.zeros((6, 8)))[:40]]],
    )
    pq.write_table(bad, seg)
    with pytest.raises(DatasetError, match="cannot decode panoptic_label PNG") as info:
        prepare_dataset("waymo", root, tmp_path / "a", splits=["training"], progress=False)
    assert str(seg) in str(info.value) and "1552440195362591_1" in str(info.value)
    report = prepare_dataset(
        "waymo", root, tmp_path / "b", splits=["training"], on_error="skip", progress=False
    )
    assert [r.path for r in report.splits[0].skipped] == [str(seg)]
    assert len(create_dataset("waymo", tmp_path / "b", "training")) == 3


def test_missing_schema_column_named(published, tmp_path: Path) -> None:
    root, _ = published
    seg = root / "validation/camera_segmentation"
    path = next(seg.glob("*.parquet"))
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["key.camera_name"]), path)
    with pytest.raises(DatasetError, match=r"lacks column\(s\) \['key.camera_name'\]"):
        WaymoPreparer(root).tasks("validation")


def test_published_root_asks_for_prepare(published) -> None:
    root, _ = published
    with pytest.raises(DatasetError, match="labelbridge datasets prepare waymo --root") as info:
        create_dataset("waymo", root, "training")
    assert str(root) in str(info.value)


def test_prepared_folder_holds_images(tmp_path: Path) -> None:
    fx = make_waymo(tmp_path / "waymo")
    import shutil

    shutil.rmtree(tmp_path / "waymo_published")  # not needed once prepared
    ds = create_dataset("waymo", fx.root, "validation")
    (sample,) = list(ds.iter_samples())
    assert sample.image.shape == (6, 8, 3)
    assert ds.taxonomy.name == "waymo2d"


def test_pyarrow_missing_gives_install_hint(published, monkeypatch) -> None:
    root, _ = published
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(UserError, match=r"pip install labelbridge\[waymo\]"):
        WaymoPreparer(root).tasks("training")
