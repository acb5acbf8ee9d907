"""Evaluation on real CamVid data: prediction folders, models, and the `evaluate` CLI.
Expected numbers are counted by hand with explicit per-class masks."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from labelbridge.cli import main
from labelbridge.constants import IGNORE_INDEX
from labelbridge.data import SegmentationDataset, create_dataset
from labelbridge.errors import CheckpointError, DatasetError, OntologyError
from labelbridge.evaluation import evaluate_model, evaluate_prediction_folder
from labelbridge.models import SegmentationModel
from labelbridge.taxonomy import load_ontology, load_taxonomy

LIMIT = 3


def hand_iou(preds: list[np.ndarray], gts: list[np.ndarray], num_classes: int) -> list[float]:
    """IoU per class from explicit masks (NaN where absent from GT and prediction)."""
    out = []
    for k in range(num_classes):
        tp = fp = fn = 0
        for p, g in zip(preds, gts, strict=True):
            valid = g != IGNORE_INDEX
            tp += int(((g == k) & (p == k)).sum())
            fp += int(((g != k) & valid & (p == k)).sum())
            fn += int(((g == k) & (p != k)).sum())
        out.append(tp / (tp + fp + fn) if tp + fp + fn else float("nan"))
    return out


def nanmean(values: list[float]) -> float:
    return float(np.nanmean(np.array(values)))


@pytest.fixture(scope="module")
def camvid_test(camvid_root: Path) -> SegmentationDataset:
    return create_dataset("camvid", camvid_root, "test")


@pytest.fixture(scope="module")
def gt_train_ids(camvid_test: SegmentationDataset) -> list[np.ndarray]:
    tax = camvid_test.taxonomy
    return [tax.to_train_ids(camvid_test.read_label(p.label)) for p in camvid_test.pairs[:LIMIT]]


def write_preds(folder: Path, dataset: SegmentationDataset, maps: list[np.ndarray]) -> None:
    for pair, pred in zip(dataset.pairs, maps, strict=False):
        path = folder / f"{pair.key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pred.astype(np.uint8)).save(path)


def perturbed(gts: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for i, g in enumerate(gts):
        p = np.roll(g, shift=(3 + i, -5), axis=(0, 1)).copy()
        p[p == IGNORE_INDEX] = 3  # unlabelled predicted as Road
        p[100:160, 200:300] = 8  # a block of Car
        p[10:30, 10:60] = IGNORE_INDEX  # no prediction: misses
        out.append(p)
    return out


# ---------------------------------------------------------------------- prediction folders
def test_ground_truth_as_predictions_scores_one(camvid_test, gt_train_ids, tmp_path: Path) -> None:
    write_preds(tmp_path, camvid_test, gt_train_ids)
    m = evaluate_prediction_folder(
        tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=LIMIT, progress=False
    )
    assert m.miou == 1.0 and m.pixel_accuracy == 1.0
    present = sorted({int(v) for g in gt_train_ids for v in np.unique(g) if v != IGNORE_INDEX})
    assert np.flatnonzero(~np.isnan(m.per_class_iou)).tolist() == present
    assert m.num_pixels == sum(int((g != IGNORE_INDEX).sum()) for g in gt_train_ids)


def test_perturbed_predictions_match_hand_count(camvid_test, gt_train_ids, tmp_path: Path) -> None:
    preds = perturbed(gt_train_ids)
    write_preds(tmp_path, camvid_test, preds)
    m = evaluate_prediction_folder(
        tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=LIMIT, progress=False
    )
    expected = hand_iou(preds, gt_train_ids, 11)
    np.testing.assert_allclose(m.per_class_iou, expected, atol=1e-12)
    assert m.miou == pytest.approx(nanmean(expected), abs=1e-12)
    assert 0.4 < m.miou < 0.95  # a real, imperfect score
    assert int(m.unmatched.sum()) > 0


def test_projected_prediction_folder(camvid_test, gt_train_ids, tmp_path: Path) -> None:
    """Cityscapes-train-id predictions, projected to CamVid through the built-in mapping."""
    onto = load_ontology("camvid11_to_cityscapes")
    cam, cs = onto.extra, onto.source
    to_cs = {"Sky": "sky", "Building": "wall", "Pole": "pole", "Road": "road", "Pavement": "sidewalk",
             "Tree": "terrain", "SignSymbol": "traffic light", "Fence": "fence", "Car": "bus",
             "Pedestrian": "person", "Bicyclist": "motorcycle"}  # fmt: skip
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for cam_name, cs_name in to_cs.items():
        lut[cam.train_id_of(cam_name)] = cs.train_id_of(cs_name)
    write_preds(tmp_path, camvid_test, [lut[g] for g in gt_train_ids])
    m = evaluate_prediction_folder(
        tmp_path, camvid_test, pred_taxonomy=cs, ontology=onto, limit=LIMIT, progress=False
    )
    assert m.miou == 1.0
    with pytest.raises(OntologyError, match="camvid11"):
        evaluate_prediction_folder(
            tmp_path, camvid_test, pred_taxonomy=cs, limit=LIMIT, progress=False
        )


def test_prediction_folder_errors_name_the_file(camvid_test, gt_train_ids, tmp_path: Path) -> None:
    write_preds(tmp_path, camvid_test, gt_train_ids[:2])
    with pytest.raises(DatasetError, match=r"0001TP_008610\.png: prediction file missing"):
        evaluate_prediction_folder(
            tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=3, progress=False
        )
    write_preds(tmp_path, camvid_test, [gt_train_ids[0][:-1]])
    with pytest.raises(DatasetError, match=r"0001TP_008550\.png: prediction size 480x359 differs"):
        evaluate_prediction_folder(
            tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=1, progress=False
        )


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_workers_do_not_change_the_counts(camvid_test, gt_train_ids, tmp_path, workers) -> None:
    preds = perturbed(gt_train_ids)
    write_preds(tmp_path, camvid_test, preds)
    m = evaluate_prediction_folder(
        tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=LIMIT, progress=False,
        workers=workers,
    )  # fmt: skip
    hand = np.zeros((11, 12), dtype=np.int64)  # rows: ground truth; column 11: misses
    for p, g in zip(preds, gt_train_ids, strict=True):
        valid = g != IGNORE_INDEX
        np.add.at(hand, (g[valid].astype(int), np.minimum(p[valid], 11).astype(int)), 1)
    np.testing.assert_array_equal(m.confusion, hand[:, :11])
    np.testing.assert_array_equal(m.unmatched, hand[:, 11])


def test_first_bad_sample_in_order_is_reported_with_workers(camvid_test, gt_train_ids, tmp_path):
    """Sample 1's prediction is missing and sample 2's has the wrong size: with 4 threads
    working ahead, the error is still sample 1's."""
    write_preds(tmp_path, camvid_test, [gt_train_ids[0], gt_train_ids[0], gt_train_ids[2][:-1]])
    (tmp_path / f"{camvid_test.pairs[1].key}.png").unlink()
    with pytest.raises(
        DatasetError, match=rf"{camvid_test.pairs[1].key}\.png: prediction file missing"
    ):
        evaluate_prediction_folder(
            tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=3, progress=False,
            workers=4,
        )  # fmt: skip


def test_label_id_predictions(camvid_test, gt_train_ids, tmp_path: Path) -> None:
    """``pred_ids="label"`` reads raw label ids (the Cityscapes submission format): the raw
    ground truth scores 1; an ignored class's id is a miss; an unknown id names the file."""
    raw = [camvid_test.read_label(p.label) for p in camvid_test.pairs[:LIMIT]]
    assert all(int(r.max()) == 11 for r in raw)  # 11 = Unlabelled, ignored
    write_preds(tmp_path, camvid_test, raw)
    m = evaluate_prediction_folder(
        tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=LIMIT, progress=False,
        pred_ids="label",
    )  # fmt: skip
    assert m.miou == 1.0 and int(m.unmatched.sum()) == 0
    as_unlabelled = [np.where(r == 3, 11, r) for r in raw]  # Road predicted as Unlabelled
    write_preds(tmp_path, camvid_test, as_unlabelled)
    m = evaluate_prediction_folder(
        tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=LIMIT, progress=False,
        pred_ids="label",
    )  # fmt: skip
    road = camvid_test.taxonomy.train_id_of("Road")
    assert int(m.unmatched[road]) == sum(int((r == 3).sum()) for r in raw) > 0
    bad = raw[0].copy()
    bad[0, 0] = 200
    write_preds(tmp_path, camvid_test, [bad])
    with pytest.raises(DatasetError, match=r"0001TP_008550\.png: label ids \[200\]"):
        evaluate_prediction_folder(
            tmp_path, camvid_test, pred_taxonomy=camvid_test.taxonomy, limit=1, progress=False,
            pred_ids="label",
        )  # fmt: skip


# ---------------------------------------------------------------------- models
class ConstantModel(SegmentationModel):
    """Predicts one class everywhere, from quarter-resolution logits."""

    def __init__(self, num_classes: int, label: int) -> None:
        super().__init__(num_classes, size_divisor=4)
        self.label = label

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = x.shape
        logits = torch.zeros(b, self.num_classes, h // 4, w // 4)
        logits[:, self.label] = 1.0
        return {"logits": logits}


class BrightnessModel(SegmentationModel):
    """Sky (train id 0) where the mean RGB exceeds 0.5, Road (3) elsewhere."""

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        rgb = x * self.pixel_std + self.pixel_mean
        m = rgb.mean(dim=1)
        logits = torch.full((x.shape[0], self.num_classes, *x.shape[-2:]), -10.0)
        logits[:, 0] = m - 0.5
        logits[:, 3] = 0.5 - m
        return {"logits": logits}


def test_evaluate_model_matches_hand_count(camvid_test, gt_train_ids) -> None:
    model = BrightnessModel(11)
    m = evaluate_model(
        model,
        camvid_test,
        model_taxonomy=camvid_test.taxonomy,
        batch_size=2,
        limit=LIMIT,
        progress=False,
    )
    preds = []
    for pair in camvid_test.pairs[:LIMIT]:
        image = np.asarray(Image.open(pair.image).convert("RGB"), dtype=np.float64) / 255
        preds.append(np.where(image.mean(axis=2) > 0.5, 0, 3))
    expected = hand_iou(preds, gt_train_ids, 11)
    np.testing.assert_allclose(m.per_class_iou, expected, atol=1e-12)
    assert 0.0 < m.per_class_iou[0] < 1.0 and 0.0 < m.per_class_iou[3] < 1.0


def test_evaluate_model_resized_and_projected(camvid_test, gt_train_ids) -> None:
    onto = load_ontology("camvid11_to_cityscapes")
    road = onto.source.train_id_of("road")
    m = evaluate_model(
        ConstantModel(19, road), camvid_test, model_taxonomy=onto.source, ontology=onto,
        input_size=(240, 180), batch_size=2, limit=LIMIT, progress=False,
    )  # fmt: skip
    cam_road = onto.extra.train_id_of("Road")
    preds = [np.full_like(g, cam_road) for g in gt_train_ids]
    expected = hand_iou(preds, gt_train_ids, 11)
    np.testing.assert_allclose(m.per_class_iou, expected, atol=1e-12)
    assert m.miou == pytest.approx(nanmean(expected))
    # a constant "sky" in Cityscapes projects to CamVid Sky, not Road
    sky = evaluate_model(
        ConstantModel(19, onto.source.train_id_of("sky")), camvid_test, model_taxonomy=onto.source,
        ontology=onto, limit=1, progress=False,
    )  # fmt: skip
    assert sky.per_class_iou[onto.extra.train_id_of("Sky")] > 0 and sky.per_class_iou[cam_road] == 0


def test_evaluate_model_refuses_mismatches(camvid_test) -> None:
    cs = load_taxonomy("cityscapes")
    with pytest.raises(OntologyError, match="give an ontology"):
        evaluate_model(
            ConstantModel(19, 0), camvid_test, model_taxonomy=cs, limit=1, progress=False
        )
    with pytest.raises(CheckpointError, match=r"expected \(B, 11, H, W\)"):
        evaluate_model(
            ConstantModel(19, 0),
            camvid_test,
            model_taxonomy=camvid_test.taxonomy,
            limit=1,
            progress=False,
        )


# ---------------------------------------------------------------------- CLI
def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main(args)
    return capsys.readouterr().out


def test_cli_prediction_folder(camvid_root, camvid_test, gt_train_ids, tmp_path, capsys) -> None:
    base = [
        "evaluate",
        "--dataset",
        "camvid",
        "--root",
        str(camvid_root),
        "--split",
        "test",
        "--limit",
        str(LIMIT),
    ]
    exact, noisy = tmp_path / "exact", tmp_path / "noisy"
    write_preds(exact, camvid_test, gt_train_ids)
    d = json.loads(run_cli([*base, "--pred", str(exact), "--json"], capsys))
    assert d["miou"] == 1.0 and d["samples"] == LIMIT and d["taxonomy"] == "camvid11"
    preds = perturbed(gt_train_ids)
    write_preds(noisy, camvid_test, preds)
    d = json.loads(run_cli([*base, "--pred", str(noisy), "--json", "--workers", "0"], capsys))
    expected = hand_iou(preds, gt_train_ids, 11)
    got = [np.nan if v is None else v for v in d["per_class_iou"].values()]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert d["miou"] == pytest.approx(nanmean(expected), abs=1e-12)
    table = run_cli([*base, "--pred", str(noisy)], capsys)
    assert f"mIoU        {100 * nanmean(expected):5.1f}" in table
    assert "Road" in table and "pixel acc" in table


def test_cli_errors(camvid_root, tmp_path, capsys) -> None:
    base = ["evaluate", "--dataset", "camvid", "--root", str(camvid_root), "--split", "test"]
    with pytest.raises(SystemExit) as exc:
        main([*base, "--pred", str(tmp_path), "--limit", "1"])
    assert exc.value.code == 2
    assert "0001TP_008550.png: prediction file missing" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base)
    assert "exactly one of --pred" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--pred", str(tmp_path), "--pred-ids", "color"])
    assert "--pred-ids must be one of train, label, got 'color'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--checkpoint", str(tmp_path / "m.ckpt"), "--workers", "2"])
    assert "--pred-ids and --workers apply to --pred only" in capsys.readouterr().err


def test_cli_checkpoint(camvid_root, gt_train_ids, monkeypatch, capsys) -> None:
    import labelbridge.models

    cam = load_taxonomy("camvid11")
    fake = SimpleNamespace(model=ConstantModel(11, cam.train_id_of("Road")), taxonomy=cam)
    monkeypatch.setattr(labelbridge.models, "load_checkpoint", lambda path: fake, raising=False)
    out = run_cli(
        ["evaluate", "--dataset", "camvid", "--root", str(camvid_root), "--split", "test",
         "--checkpoint", "x.ckpt", "--input-size", "96x64", "--limit", "2", "--json"], capsys,
    )  # fmt: skip
    d = json.loads(out)
    preds = [np.full_like(g, cam.train_id_of("Road")) for g in gt_train_ids[:2]]
    assert d["miou"] == pytest.approx(nanmean(hand_iou(preds, gt_train_ids[:2], 11)), abs=1e-12)
    with pytest.raises(SystemExit):
        main(["evaluate", "--dataset", "camvid", "--root", str(camvid_root), "--split", "test",
              "--checkpoint", "x.ckpt", "--input-size", "96by64"])  # fmt: skip
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
