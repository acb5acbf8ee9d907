"""Our evaluator equals the official Cityscapes evaluation script to 1e-9 on real label
maps: CamVid test labels converted to Cityscapes label ids, with realistically perturbed
"predictions" (shifted maps, class swaps in blocks, predictions of non-evaluated ids)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data.base import read_label_png
from labelbridge.evaluation import ConfusionMatrix
from labelbridge.taxonomy import load_taxonomy

ev = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")

#: CamVid-11 raw id -> Cityscapes label id (not train id).
CAMVID_TO_CS_LABEL_ID = {
    0: 23,  # Sky -> sky
    1: 11,  # Building -> building
    2: 17,  # Pole -> pole
    3: 7,  # Road -> road
    4: 8,  # Pavement -> sidewalk
    5: 21,  # Tree -> vegetation
    6: 20,  # SignSymbol -> traffic sign
    7: 13,  # Fence -> fence
    8: 26,  # Car -> car
    9: 24,  # Pedestrian -> person
    10: 25,  # Bicyclist -> rider
    11: 0,  # Unlabelled -> unlabeled (ignored)
}
NUM_IMAGES = 6


def camvid_to_cityscapes_ids(raw: np.ndarray) -> np.ndarray:
    """``(H, W)`` CamVid raw ids -> ``(H, W)`` uint8 Cityscapes label ids."""
    lut = np.zeros(256, dtype=np.uint8)
    for cam, cs in CAMVID_TO_CS_LABEL_ID.items():
        lut[cam] = cs
    return lut[raw]


def perturb(gt: np.ndarray, seed: int) -> np.ndarray:
    """A plausible wrong prediction: shifted map, block-wise class swaps, a block of an
    id the evaluation ignores (4 'static': a miss), a block of sky over everything."""
    rng = np.random.default_rng(seed)
    pred = np.roll(
        gt, shift=(int(rng.integers(-6, 7)), int(rng.integers(-9, 10))), axis=(0, 1)
    ).copy()
    pred[pred == 0] = 7  # unlabelled pixels predicted as road
    h, w = pred.shape
    swaps = [(26, 27), (21, 22), (7, 8), (11, 12), (24, 25), (20, 19)]
    for src, dst in swaps:
        y, x = int(rng.integers(0, h - 60)), int(rng.integers(0, w - 80))
        block = pred[y : y + 60, x : x + 80]
        block[block == src] = dst
    y, x = int(rng.integers(0, h - 30)), int(rng.integers(0, w - 30))
    pred[y : y + 30, x : x + 30] = 4
    pred[: int(rng.integers(5, 20)), : int(rng.integers(20, 60))] = 23
    return pred


def official_scores(pred_files: list[str], gt_files: list[str]) -> dict:
    """Run cityscapesscripts' pixel-level evaluation in-process, quiet, no files written."""
    args = copy.copy(ev.args)
    args.evalInstLevelScore = False  # needs *_instanceIds.png, irrelevant for IoU
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.quiet = True
    return ev.evaluateImgLists(pred_files, gt_files, args)


@pytest.fixture(scope="module")
def cityscapes_layout(
    camvid_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], list[str]]:
    """Real CamVid test labels as Cityscapes ``*_gtFine_labelIds.png`` plus predictions."""
    out = tmp_path_factory.mktemp("cs")
    gt_dir, pred_dir = out / "gtFine" / "val" / "camvid", out / "results"
    gt_dir.mkdir(parents=True)
    pred_dir.mkdir()
    label_files = sorted((camvid_root / "testannot").glob("*.png"))[:: 233 // NUM_IMAGES][
        :NUM_IMAGES
    ]
    gts, preds = [], []
    for i, path in enumerate(label_files):
        gt = camvid_to_cityscapes_ids(read_label_png(path))
        stem = f"camvid_{i:06d}_{i * 30:06d}"
        gt_file, pred_file = gt_dir / f"{stem}_gtFine_labelIds.png", pred_dir / f"{stem}_pred.png"
        Image.fromarray(gt).save(gt_file)
        Image.fromarray(perturb(gt, seed=i)).save(pred_file)
        gts.append(str(gt_file))
        preds.append(str(pred_file))
    return preds, gts


def test_iou_equals_cityscapesscripts(cityscapes_layout: tuple[list[str], list[str]]) -> None:
    pred_files, gt_files = cityscapes_layout
    official = official_scores(pred_files, gt_files)

    cs = load_taxonomy("cityscapes")
    cm = ConfusionMatrix(cs.num_classes, class_names=cs.train_names)
    for pf, gf in zip(pred_files, gt_files, strict=True):
        gt = cs.to_train_ids(read_label_png(Path(gf)))
        pred = cs.to_train_ids(read_label_png(Path(pf)))  # ignored label ids -> 255 = miss
        cm.update(pred, gt)
    ours = cm.compute()

    present = 0
    for name, iou in ours.iou_by_name().items():
        theirs = official["classScores"][name]
        if math.isnan(theirs):
            assert math.isnan(iou), name
        else:
            present += 1
            assert iou == pytest.approx(theirs, abs=1e-9), name
    assert math.isclose(ours.miou, official["averageScoreClasses"], abs_tol=1e-9)
    # the comparison is not trivial: several classes present, imperfect scores, some absent
    assert present >= 10
    assert 0.3 < ours.miou < 0.95
    assert np.isnan(ours.per_class_iou).any()  # e.g. bus/train/motorcycle never appear
    # the official matrix holds the same pixels (ground truth not ignored)
    conf = np.asarray(official["confMatrix"], dtype=np.int64)
    evaluated_ids = [c.id for c in cs.train_classes]
    assert ours.num_pixels == int(conf[evaluated_ids].sum())
    assert int(ours.unmatched.sum()) > 0  # the 'static' block and ignored ids are misses
    assert IGNORE_INDEX not in evaluated_ids
