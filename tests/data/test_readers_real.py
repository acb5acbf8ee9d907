"""Readers on the real datasets in ../shared/data (skipped where absent): split sizes,
image sizes, keys, and labels within the taxonomy on a few samples per split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labelbridge.data import create_dataset

pytestmark = pytest.mark.shared

# dataset -> (root fixture, {split: images}, (width, height), labelled splits)
REAL = {
    "camvid": ("camvid_root", {"train": 367, "val": 101, "test": 233}, (480, 360)),
    "idd_lite": ("idd_lite_root", {"train": 1403, "val": 204, "test": 404}, (320, 227)),
    "ycor": ("ycor_root", {"train": 931, "valid": 145}, (512, 272)),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_split_sizes_shapes_and_labels(name: str, request: pytest.FixtureRequest) -> None:
    fixture, sizes, (width, height) = REAL[name]
    root: Path = request.getfixturevalue(fixture)
    for split, count in sizes.items():
        ds = create_dataset(name, root, split)
        assert len(ds) == count, (name, split)
        assert ds.skipped == []
        for i in (0, count // 2, count - 1):
            s = ds[i]
            assert s.image.shape == (height, width, 3) and s.image.dtype == np.uint8
            assert s.key == s.image_path.relative_to(root).with_suffix("").as_posix()
            if not ds.has_labels:
                assert s.label is None
                continue
            assert s.label.shape == (height, width) and s.label.dtype == np.int32
            assert ds.taxonomy.unknown_ids(s.label) == []
            # labels hold several classes, not one constant value
            assert len(np.unique(s.label)) >= 2


def test_real_keys_mirror_layout(camvid_root: Path, idd_lite_root: Path, ycor_root: Path) -> None:
    assert create_dataset("camvid", camvid_root, "train").pairs[0].key == "train/0001TP_006690"
    idd = create_dataset("idd_lite", idd_lite_root, "val")
    assert all(p.key.startswith("leftImg8bit/val/") and p.key.endswith("_image") for p in idd.pairs)
    assert all(p.label.name == p.image.name.replace("_image.jpg", "_label.png") for p in idd.pairs)
    ycor = create_dataset("ycor", ycor_root, "train")
    assert ycor.pairs[0].key == "train/iid000000/rgb"


def test_real_ycor_label_is_palette_index(ycor_root: Path) -> None:
    # README: iid000000's labels hold classes 0, 1, 2 and 7 (palette indices, not colours)
    label = create_dataset("ycor", ycor_root, "train")[0].label
    assert np.unique(label).tolist() == [0, 1, 2, 7]


def test_real_camvid_pairs_match_list_file(camvid_root: Path) -> None:
    listed = [
        line.split() for line in (camvid_root / "val.txt").read_text().splitlines() if line.strip()
    ]
    ds = create_dataset("camvid", camvid_root, "val")
    assert sorted(
        (str(p.image.relative_to(camvid_root)), str(p.label.relative_to(camvid_root)))
        for p in ds.pairs
    ) == sorted((a, b) for a, b in listed)
