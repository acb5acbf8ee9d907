"""SegmentationTorchDataset: gt and pseudo-label sources, taxonomy checks, resizing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from benchmarks.common.layouts.toydata import make_toy_dataset
from labelbridge.constants import IGNORE_INDEX
from labelbridge.data import create_dataset
from labelbridge.data.torch_dataset import SegmentationTorchDataset, pad_collate
from labelbridge.errors import ConfigError, DatasetError
from labelbridge.taxonomy import load_taxonomy


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    return make_toy_dataset(tmp_path / "toy", splits={"train": 3})


def test_gt_targets_are_train_ids(toy: Path) -> None:
    reader = create_dataset("folder", toy, "train")
    ds = SegmentationTorchDataset(reader, taxonomy=load_taxonomy(toy / "taxonomy.yaml"))
    image, target = ds[1]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 48, 64)
    assert target.dtype == torch.int64 and tuple(target.shape) == (48, 64)
    raw = reader[1].label
    # raw ids 0, 1, 2 are train ids 0, 1, 2; raw 9 (void) is ignore
    expected = np.where(raw == 9, IGNORE_INDEX, raw)
    assert np.array_equal(target.numpy(), expected)
    assert np.array_equal(image.permute(1, 2, 0).numpy(), reader[1].image)


def test_gt_of_another_taxonomy_is_refused(toy: Path) -> None:
    reader = create_dataset("folder", toy, "train")
    with pytest.raises(ConfigError, match="use pseudo-labels"):
        SegmentationTorchDataset(reader, taxonomy=load_taxonomy("camvid11"))


def test_resize_bilinear_image_nearest_label(toy: Path) -> None:
    reader = create_dataset("folder", toy, "train")
    ds = SegmentationTorchDataset(reader, taxonomy=reader.taxonomy, resize=(32, 24))
    image, target = ds[0]
    assert tuple(image.shape) == (3, 24, 32) and tuple(target.shape) == (24, 32)
    assert set(torch.unique(target).tolist()) <= {0, 1, 2, IGNORE_INDEX}
    # nearest: each output label equals a source label at the mapped position (2x down)
    full = ds.reader.taxonomy.to_train_ids(reader[0].label)
    assert np.array_equal(target.numpy(), full[1::2, 1::2])


def write_pseudo(folder: Path, reader, taxonomy: str, values: int | None = None) -> None:
    folder.mkdir(parents=True)
    (folder / "pseudo_labels.yaml").write_text(
        yaml.safe_dump({"taxonomy": taxonomy}), encoding="utf-8"
    )
    for i, pair in enumerate(reader.pairs):
        lab = (
            np.full((48, 64), i, dtype=np.uint8)
            if values is None
            else np.full((48, 64), values, np.uint8)
        )
        lab[0, 0] = IGNORE_INDEX
        path = folder / f"{pair.key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(lab, mode="L").save(path)


def test_pseudo_labels_are_read(toy: Path, tmp_path: Path) -> None:
    reader = create_dataset("folder", toy, "train")
    write_pseudo(tmp_path / "pseudo", reader, "toy3")
    ds = SegmentationTorchDataset(reader, taxonomy=reader.taxonomy, labels=tmp_path / "pseudo")
    for i in range(3):
        _, target = ds[i]
        assert int(target[0, 0]) == IGNORE_INDEX
        assert int(target[5, 5]) == i and int((target == i).sum()) == 48 * 64 - 1


def test_pseudo_labels_of_another_taxonomy_are_refused(toy: Path, tmp_path: Path) -> None:
    reader = create_dataset("folder", toy, "train")
    write_pseudo(tmp_path / "pseudo", reader, "cityscapes")
    with pytest.raises(
        ConfigError, match=r"pseudo_labels.yaml: pseudo-labels are in taxonomy 'cityscapes'"
    ):
        SegmentationTorchDataset(reader, taxonomy=reader.taxonomy, labels=tmp_path / "pseudo")


def test_pseudo_label_out_of_range_values(toy: Path, tmp_path: Path) -> None:
    reader = create_dataset("folder", toy, "train")
    write_pseudo(tmp_path / "pseudo", reader, "toy3", values=7)
    ds = SegmentationTorchDataset(reader, taxonomy=reader.taxonomy, labels=tmp_path / "pseudo")
    with pytest.raises(DatasetError, match=r"values \[7\] are not train ids"):
        ds[0]


def test_missing_pseudo_labels_raise_or_skip(toy: Path, tmp_path: Path) -> None:
    reader = create_dataset("folder", toy, "train")
    write_pseudo(tmp_path / "pseudo", reader, "toy3")
    (tmp_path / "pseudo" / f"{reader.pairs[1].key}.png").unlink()
    with pytest.raises(ConfigError, match="1 of 3 samples"):
        SegmentationTorchDataset(reader, taxonomy=reader.taxonomy, labels=tmp_path / "pseudo")
    skipping = create_dataset("folder", toy, "train", on_error="skip")
    ds = SegmentationTorchDataset(skipping, taxonomy=skipping.taxonomy, labels=tmp_path / "pseudo")
    assert len(ds) == 2 and ds.indices == [0, 2]
    assert int(ds[1][1][5, 5]) == 2
    # the skip is recorded like every other (training writes it to metrics.json)
    missing = tmp_path / "pseudo" / f"{reader.pairs[1].key}.png"
    assert [(r.path, r.kind) for r in skipping.skipped] == [(str(missing), "missing_label")]


def test_pad_collate_pads_with_ignore() -> None:
    a = (torch.full((3, 2, 3), 7, dtype=torch.uint8), torch.zeros(2, 3, dtype=torch.int64))
    b = (torch.full((3, 4, 2), 9, dtype=torch.uint8), torch.ones(4, 2, dtype=torch.int64))
    images, targets = pad_collate([a, b])
    assert tuple(images.shape) == (2, 3, 4, 3) and tuple(targets.shape) == (2, 4, 3)
    assert targets[0, 2:].eq(IGNORE_INDEX).all() and targets[0, :2].eq(0).all()
    assert targets[1, :, 2].eq(IGNORE_INDEX).all() and targets[1, :, :2].eq(1).all()
    assert images[0, :, 2:].eq(0).all() and images[1, :, :, :2].eq(9).all()


@pytest.mark.shared
def test_camvid_real_sample(camvid_root: Path) -> None:
    reader = create_dataset("camvid", camvid_root, "val")
    ds = SegmentationTorchDataset(
        reader, taxonomy=load_taxonomy("camvid11"), resize=(120, 90), limit=2
    )
    assert len(ds) == 2
    image, target = ds[0]
    assert tuple(image.shape) == (3, 90, 120)
    values = set(torch.unique(target).tolist())
    assert values <= set(range(11)) | {IGNORE_INDEX} and len(values) >= 4
