"""The folder evaluation's one-pass path (a joint histogram of raw uint8 values folded
through lookup tables) counts exactly what the general path (convert, project, count)
counts. The same prediction maps are written once as 8-bit PNGs (one-pass path) and once
as 16-bit PNGs (general path) and scored against real CamVid labels."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data import SegmentationDataset, create_dataset
from labelbridge.data.base import read_label_ids, read_label_png
from labelbridge.errors import DatasetError
from labelbridge.evaluation import evaluate_prediction_folder
from labelbridge.evaluation.confusion import (
    UnmappedValues,
    fold_histogram,
    joint_histogram,
    pair_counts,
    train_id_tables,
)
from labelbridge.taxonomy import load_ontology, load_taxonomy

LIMIT = 3


@pytest.fixture(scope="module")
def camvid_test(camvid_root: Path) -> SegmentationDataset:
    return create_dataset("camvid", camvid_root, "test")


def write(folder: Path, dataset: SegmentationDataset, maps: list[np.ndarray], bits: int) -> Path:
    for pair, m in zip(dataset.pairs, maps, strict=False):
        path = folder / f"{pair.key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if bits == 8:
            Image.fromarray(m.astype(np.uint8)).save(path)
        else:
            Image.fromarray(m.astype(np.uint16)).save(path)  # mode I;16
    return folder


def both_paths(tmp_path, dataset, maps, **kwargs):
    out = []
    for bits in (8, 16):
        folder = write(tmp_path / f"b{bits}", dataset, maps, bits)
        dtype = read_label_ids(next(folder.rglob("*.png"))).dtype
        assert dtype == (np.uint8 if bits == 8 else np.uint16)
        out.append(
            evaluate_prediction_folder(folder, dataset, limit=LIMIT, progress=False, **kwargs)
        )
    return out


def test_train_id_predictions_with_values_outside_count_alike(
    camvid_test, tmp_path, caplog
) -> None:
    rng = np.random.default_rng(0)
    shape = read_label_png(camvid_test.pairs[0].label).shape
    maps = [rng.integers(0, 14, size=shape) for _ in range(LIMIT)]  # 11..13: not train ids
    maps[1][:5] = IGNORE_INDEX
    with caplog.at_level(logging.WARNING):
        fast, general = both_paths(tmp_path, camvid_test, maps, pred_taxonomy=camvid_test.taxonomy)
    np.testing.assert_array_equal(fast.confusion, general.confusion)
    np.testing.assert_array_equal(fast.unmatched, general.unmatched)
    assert int(fast.unmatched.sum()) > 0
    warnings = [r.getMessage() for r in caplog.records if "count as misses" in r.getMessage()]
    assert len(warnings) == 2 and all("[11, 12, 13]" in w for w in warnings)


def test_label_id_predictions_projected_count_alike(camvid_test, tmp_path) -> None:
    """Cityscapes label ids (ignored ids among them) projected into CamVid-11."""
    onto = load_ontology("camvid11_to_cityscapes")
    cs = load_taxonomy("cityscapes")
    rng = np.random.default_rng(1)
    shape = read_label_png(camvid_test.pairs[0].label).shape
    ids = np.array(sorted(c.id for c in cs.classes if c.id >= 0))
    maps = [rng.choice(ids, size=shape) for _ in range(LIMIT)]
    fast, general = both_paths(
        tmp_path, camvid_test, maps, pred_taxonomy=cs, ontology=onto, pred_ids="label"
    )
    np.testing.assert_array_equal(fast.confusion, general.confusion)
    np.testing.assert_array_equal(fast.unmatched, general.unmatched)
    assert fast.confusion.sum() > 0 and int(fast.unmatched.sum()) > 0


def test_unknown_label_ids_name_the_file_on_both_paths(camvid_test, tmp_path) -> None:
    raw = read_label_png(camvid_test.pairs[0].label).copy()
    raw[0, :3] = [200, 201, 7]
    for bits in (8, 16):
        folder = write(tmp_path / f"b{bits}", camvid_test, [raw], bits)
        with pytest.raises(DatasetError, match=r"0001TP_008550\.png: label ids \[200, 201\]"):
            evaluate_prediction_folder(
                folder, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=1,
                progress=False, pred_ids="label",
            )  # fmt: skip


def test_fold_histogram_counts_by_hand() -> None:
    k = 3
    target = np.array([[0, 1, 2], [2, 255, 1]], dtype=np.uint8)
    pred = np.array([[0, 2, 2], [7, 1, 1]], dtype=np.uint8)
    counts = fold_histogram(joint_histogram(pred, target), *train_id_tables(k), k)
    expected = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]])  # column 3: misses
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(counts, pair_counts(pred, target, k))
    bad = target.copy()
    bad[0, 0] = 9
    with pytest.raises(UnmappedValues) as err:
        fold_histogram(joint_histogram(pred, bad), *train_id_tables(k), k)
    assert err.value.side == "target" and err.value.values == [9]


def test_read_label_ids_keeps_the_file_type(camvid_test) -> None:
    path = camvid_test.pairs[0].label
    native, wide = read_label_ids(path), read_label_png(path)
    assert native.dtype == np.uint8 and wide.dtype == np.int32
    np.testing.assert_array_equal(native, wide)
