"""ConfusionMatrix, metrics and projected evaluation on hand-computed examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.evaluation import (
    ConfusionMatrix,
    evaluate_label_maps,
    metrics_from_counts,
    project_predictions,
)
from labelbridge.evaluation.confusion import count_confusion
from labelbridge.taxonomy import Ontology, list_mappings, load_ontology, load_taxonomy

I = IGNORE_INDEX  # noqa: E741

# 3 classes; pairs (gt, pred): (0,0)x2 (0,1) (1,1) (1,2) (2,2)x2 (2,0) (2,miss) + one ignored
TARGET = np.array([[0, 0, 0, 1, 1], [2, 2, 2, 2, I]])
PRED = np.array([[0, 0, 1, 1, 2], [2, 2, 0, I, 1]])
# class 0: TP 2, FN 1, FP 1 -> 2/4; class 1: TP 1, FN 1, FP 1 -> 1/3;
# class 2: TP 2, FN 2 (one to class 0, one miss), FP 1 -> 2/5
EXPECTED_IOU = [0.5, 1 / 3, 0.4]


def test_hand_computed_3x3() -> None:
    cm = ConfusionMatrix(3, class_names=["a", "b", "c"])
    cm.update(PRED, TARGET)
    assert cm.matrix.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert cm.unmatched.tolist() == [0, 0, 1]
    m = cm.compute()
    np.testing.assert_allclose(m.per_class_iou, EXPECTED_IOU, rtol=0, atol=1e-15)
    assert m.miou == pytest.approx(sum(EXPECTED_IOU) / 3, abs=1e-15)
    assert m.pixel_accuracy == pytest.approx(5 / 9, abs=1e-15)
    np.testing.assert_allclose(m.per_class_accuracy, [2 / 3, 1 / 2, 2 / 4], atol=1e-15)
    assert m.mean_accuracy == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3, abs=1e-15)
    assert m.num_pixels == 9
    assert m.iou_by_name() == pytest.approx({"a": 0.5, "b": 1 / 3, "c": 0.4})


def test_ignored_target_pixels_are_skipped_whatever_the_prediction() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([[0, 1, 2, 7]]), np.full((1, 4), I))
    assert int(cm.counts.sum()) == 0
    assert math.isnan(cm.compute().miou)


def test_absent_classes_are_nan_and_left_out_of_the_mean() -> None:
    cm = ConfusionMatrix(5)
    cm.update(PRED, TARGET)  # classes 3 and 4 never appear
    m = cm.compute()
    assert np.isnan(m.per_class_iou[3:]).all()
    assert np.isnan(m.per_class_accuracy[3:]).all()
    assert m.miou == pytest.approx(sum(EXPECTED_IOU) / 3, abs=1e-15)
    # a class present only in the prediction counts with IoU 0
    cm.update(np.array([[4]]), np.array([[0]]))
    m = cm.compute()
    assert m.per_class_iou[4] == 0.0 and math.isnan(m.per_class_iou[3])
    assert m.per_class_iou[0] == pytest.approx(2 / 5)
    assert m.miou == pytest.approx((2 / 5 + 1 / 3 + 0.4 + 0.0) / 4, abs=1e-15)


def test_out_of_range_predictions_are_misses() -> None:
    target = np.array([[0, 0, 1, 1]])
    cm = ConfusionMatrix(2)
    cm.update(np.array([[0, I, -1, 9]]), target)
    assert cm.unmatched.tolist() == [1, 2]
    m = cm.compute()
    # class 0: TP 1, FN 1 -> 0.5; class 1: TP 0, FN 2, FP 0 -> 0 (not NaN: it is in the GT)
    np.testing.assert_allclose(m.per_class_iou, [0.5, 0.0])
    assert m.pixel_accuracy == pytest.approx(0.25)


def test_torch_numpy_and_batches_agree() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 6, size=(3, 17, 23))
    target[rng.random(target.shape) < 0.1] = I
    pred = rng.integers(0, 7, size=(3, 17, 23))  # 6 = out of range
    a = ConfusionMatrix(6)
    a.update(pred, target)
    b = ConfusionMatrix(6)
    b.update(torch.from_numpy(pred).to(torch.uint8), torch.from_numpy(target).to(torch.uint8))
    c = ConfusionMatrix(6)
    for i in range(3):
        c.update(torch.from_numpy(pred[i]), target[i].astype(np.int32))
    assert torch.equal(a.counts, b.counts) and torch.equal(a.counts, c.counts)
    assert a.counts.dtype == torch.int64
    # reference: explicit per-pixel loop
    ref = np.zeros((6, 7), dtype=np.int64)
    for t, p in zip(target.ravel(), pred.ravel(), strict=True):
        if t != I:
            ref[t, p if 0 <= p < 6 else 6] += 1
    assert a.counts.numpy().tolist() == ref.tolist()
    # the on-device path (used for CUDA tensors) gives the same counts; run here on CPU
    dev = count_confusion(torch.from_numpy(pred), torch.from_numpy(target), 6, torch.device("cpu"))
    assert dev.tolist() == ref.tolist()
    # wide integer types and negative predictions take the same route
    wide = ConfusionMatrix(6)
    wide.update(np.where(pred == 6, -3, pred).astype(np.int64), target.astype(np.int64))
    assert wide.counts.numpy().tolist() == ref.tolist()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_counts_stay_on_the_cuda_device() -> None:
    rng = np.random.default_rng(1)
    target = rng.integers(0, 5, size=(2, 31, 29))
    target[rng.random(target.shape) < 0.2] = I
    pred = rng.integers(-1, 7, size=(2, 31, 29))
    cpu = ConfusionMatrix(5)
    cpu.update(pred, target)
    gpu = ConfusionMatrix(5)
    gpu.update(torch.from_numpy(pred).cuda(), torch.from_numpy(target).cuda())
    assert gpu.device.type == "cuda" and gpu.counts.dtype == torch.int64
    gpu.update(pred, target)  # numpy input is moved to the matrix's device
    assert torch.equal(gpu.counts.cpu(), 2 * cpu.counts)
    np.testing.assert_array_equal(gpu.compute().per_class_iou, cpu.compute().per_class_iou)
    with pytest.raises(ValueError, match=r"values \[9\]"):
        gpu.update(torch.zeros(2, 2, dtype=torch.long).cuda(), torch.full((2, 2), 9).cuda())


def test_merge_iadd_reset_and_device() -> None:
    a, b = ConfusionMatrix(3), ConfusionMatrix(3)
    a.update(PRED[:1], TARGET[:1])
    b.update(PRED[1:], TARGET[1:])
    a += b
    whole = ConfusionMatrix(3)
    whole.update(PRED, TARGET)
    assert torch.equal(a.counts, whole.counts)
    a.reset()
    assert int(a.counts.sum()) == 0
    assert a.device == torch.device("cpu")
    with pytest.raises(ValueError, match="merge"):
        a.merge(ConfusionMatrix(4))


def test_bad_inputs_raise() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"values \[3, 7\] outside 0..2"):
        cm.update(np.zeros((2, 2), dtype=int), np.array([[0, 3], [7, I]]))
    with pytest.raises(ValueError, match="differs"):
        cm.update(np.zeros((2, 2), dtype=int), np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        cm.update(np.zeros((2, 2)), np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros(4, dtype=int), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"values \[-2, 300\]"):
        cm.update(np.zeros((1, 3), dtype=np.int32), np.array([[0, -2, 300]], dtype=np.int32))
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(0)


def test_all_reduce_is_a_noop_without_a_process_group() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, TARGET)
    before = cm.counts.clone()
    assert cm.all_reduce() is cm
    assert torch.equal(cm.counts, before)


def _ddp_worker(rank: int, world: int, port: int, results: dict) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        cm = ConfusionMatrix(3)
        row = slice(0, 1) if rank == 0 else slice(1, 2)  # each process sees half the data
        cm.update(PRED[row], TARGET[row])
        cm.all_reduce()
        results[rank] = cm.counts.tolist()
    finally:
        dist.destroy_process_group()


def test_all_reduce_sums_across_two_processes() -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_ddp_worker, args=(2, port, results), nprocs=2, join=True)
    whole = ConfusionMatrix(3)
    whole.update(PRED, TARGET)
    assert results[0] == results[1] == whole.counts.tolist()
    # summing matrices, not averaging mIoUs: process 0 alone has IoUs (2/3, 0, nan)
    alone = ConfusionMatrix(3)
    alone.update(PRED[:1], TARGET[:1])
    assert alone.compute().miou != pytest.approx(whole.compute().miou)


def test_to_dict_is_json_with_nan_as_null() -> None:
    m = metrics_from_counts(np.array([[3, 0, 0, 1], [0, 0, 0, 0], [1, 0, 2, 1]]), ["x", "y", "z"])
    d = json.loads(json.dumps(m.to_dict()))
    assert d["per_class_iou"] == {"x": 3 / 5, "y": None, "z": 2 / 4}
    assert d["miou"] == pytest.approx((0.6 + 0.5) / 2)
    assert d["per_class_accuracy"]["y"] is None
    assert d["confusion"] == [[3, 0, 0], [0, 0, 0], [1, 0, 2]]
    assert d["unmatched"] == [1, 0, 1]
    assert d["num_pixels"] == 8
    with pytest.raises(ValueError, match="shape"):
        metrics_from_counts(np.zeros((3, 3)))


# ---------------------------------------------------------------------- projection
IDD_TO_CAMVID = {
    "source": "camvid11",
    "extra": "idd_level1",
    "unlabelled": "ignore",
    "mapping": {
        "drivable": ["Road"],
        "non-drivable": ["Pavement"],
        "living things": ["Pedestrian", "Bicyclist"],
        "vehicles": ["Car"],
        "road-side objects": ["Pole", "SignSymbol"],  # Fence left out: no counterpart
        "far objects": ["Building", "Tree"],
        "sky": ["Sky"],
    },
}


@pytest.fixture(scope="module")
def idd_ontology() -> Ontology:
    return Ontology.from_dict(IDD_TO_CAMVID)


def test_project_predictions_numpy_and_torch(idd_ontology: Ontology) -> None:
    cam = load_taxonomy("camvid11")
    idd = load_taxonomy("idd_level1")
    names = [
        "Sky",
        "Building",
        "Pole",
        "Road",
        "Pavement",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    ]
    assert cam.train_names == names
    pred = np.array([cam.train_id_of(n) for n in names] + [I, 200])
    expected_names = ["sky", "far objects", "road-side objects", "drivable", "non-drivable", "far objects",
                      "road-side objects", None, "vehicles", "living things", "living things", None, None]  # fmt: skip
    expected = [idd.train_id_of(n) if n else I for n in expected_names]
    assert project_predictions(pred, idd_ontology).tolist() == expected
    out = project_predictions(torch.from_numpy(pred).view(1, 13), idd_ontology)
    assert isinstance(out, torch.Tensor) and out.shape == (1, 13)
    assert out.view(-1).tolist() == expected


def test_projected_evaluation_hand_example(idd_ontology: Ontology) -> None:
    # camvid train ids: 3 Road, 7 Fence (no counterpart), 0 Sky, 8 Car, 9 Pedestrian, 1 Building
    pred = np.array([[3, 3, 7, 0], [8, 9, 1, I]])
    # idd train ids: 0 drivable, 1 non-drivable, 4 road-side, 6 sky, 3 vehicles, 5 far objects
    gt = np.array([[0, 1, 4, 6], [3, 3, 5, I]])
    m = evaluate_label_maps([pred], [gt], ontology=idd_ontology)
    # drivable 1/2 (FP from the non-drivable pixel), non-drivable 0, living things 0
    # (predicted only), vehicles 1/2, road-side 0 (Fence projects to nothing: a miss),
    # far objects 1, sky 1
    np.testing.assert_allclose(m.per_class_iou, [0.5, 0.0, 0.0, 0.5, 0.0, 1.0, 1.0], atol=1e-15)
    assert m.miou == pytest.approx(3 / 7, abs=1e-15)
    assert m.pixel_accuracy == pytest.approx(4 / 7, abs=1e-15)
    assert m.unmatched.tolist() == [0, 0, 0, 0, 1, 0, 0]
    assert m.class_names == load_taxonomy("idd_level1").train_names
    # without the projection, the same maps give other numbers (proof that it ran)
    plain = evaluate_label_maps([pred], [gt], num_classes=11)
    assert plain.miou != pytest.approx(m.miou)


def test_evaluate_label_maps_checks(idd_ontology: Ontology) -> None:
    with pytest.raises(ValueError, match="differ in number"):
        evaluate_label_maps([PRED, PRED], [TARGET], num_classes=3)
    with pytest.raises(ValueError, match="extra taxonomy"):
        evaluate_label_maps(
            [PRED], [TARGET], ontology=idd_ontology, taxonomy=load_taxonomy("camvid11")
        )
    with pytest.raises(ValueError, match="num_classes"):
        evaluate_label_maps([PRED], [TARGET])


@pytest.mark.skipif(
    "idd_level1_to_camvid11" not in list_mappings(), reason="built-in mapping not present"
)
def test_builtin_idd_mapping_projects_unambiguous_classes() -> None:
    onto = load_ontology("idd_level1_to_camvid11")
    cam, idd = onto.source, onto.extra
    pred = np.array([cam.train_id_of(n) for n in ("Road", "Sky", "Car", "Pedestrian", "Building")])
    expected = [
        idd.train_id_of(n) for n in ("drivable", "sky", "vehicles", "living things", "far objects")
    ]
    assert project_predictions(pred, onto).tolist() == expected
