"""Real CamVid label maps in the Cityscapes layout the official evaluation reads, with
plausible wrong predictions beside them: the shared input of the evaluator-agreement test
and benchmark (``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from PIL import Image

from labelbridge.data.base import read_label_png

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


def camvid_to_cityscapes_ids(raw: np.ndarray) -> np.ndarray:
    """``(H, W)`` CamVid raw ids -> ``(H, W)`` uint8 Cityscapes label ids."""
    lut = np.zeros(256, dtype=np.uint8)
    for cam, cs in CAMVID_TO_CS_LABEL_ID.items():
        lut[cam] = cs
    return lut[raw]


def perturb(gt: np.ndarray, seed: int) -> np.ndarray:
    """A plausible wrong prediction of ``(H, W)`` label ids: shifted map, block-wise class
    swaps, a block of an id the evaluation ignores (4 'static': a miss), a block of sky
    over everything."""
    rng = np.random.default_rng(seed)
    pred = np.roll(
        gt, shift=(int(rng.integers(-6, 7)), int(rng.integers(-9, 10))), axis=(0, 1)
    ).copy()
    pred[pred == 0] = 7  # unlabelled pixels predicted as road
    h, w = pred.shape
    for src, dst in [(26, 27), (21, 22), (7, 8), (11, 12), (24, 25), (20, 19)]:
        y, x = int(rng.integers(0, h - 60)), int(rng.integers(0, w - 80))
        block = pred[y : y + 60, x : x + 80]
        block[block == src] = dst
    y, x = int(rng.integers(0, h - 30)), int(rng.integers(0, w - 30))
    pred[y : y + 30, x : x + 30] = 4
    pred[: int(rng.integers(5, 20)), : int(rng.integers(20, 60))] = 23
    return pred


def write_layout(label_files: list[Path], out: Path) -> tuple[list[str], list[str]]:
    """Each CamVid label file as ``out/gtFine/val/camvid/<stem>_gtFine_labelIds.png`` and
    its :func:`perturb` as ``out/results/<stem>_pred.png``.

    Returns:
        The prediction files and the ground-truth files, in the same order.
    """
    gt_dir, pred_dir = out / "gtFine" / "val" / "camvid", out / "results"
    gt_dir.mkdir(parents=True)
    pred_dir.mkdir(parents=True)
    preds, gts = [], []
    for i, path in enumerate(label_files):
        gt = camvid_to_cityscapes_ids(read_label_png(path))
        stem = f"camvid_{i:06d}_{i:06d}"
        gt_file, pred_file = gt_dir / f"{stem}_gtFine_labelIds.png", pred_dir / f"{stem}_pred.png"
        Image.fromarray(gt).save(gt_file)
        Image.fromarray(perturb(gt, seed=i)).save(pred_file)
        gts.append(str(gt_file))
        preds.append(str(pred_file))
    return preds, gts


def official_scores(pred_files: list[str], gt_files: list[str]) -> dict:
    """cityscapesscripts' pixel-level evaluation in-process, quiet, no files written
    (``classScores``, ``averageScoreClasses``, ...)."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    args = copy.copy(ev.args)
    args.evalInstLevelScore = False  # needs *_instanceIds.png; irrelevant for IoU
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.quiet = True
    return ev.evaluateImgLists(pred_files, gt_files, args)


def decoded_images(files: list[str]) -> dict[str, Image.Image]:
    """Each file decoded once into memory, by path (for :func:`official_in_memory`)."""
    out = {}
    for path in files:
        with Image.open(path) as im:
            im.load()
            out[path] = im.copy()
    return out


def official_in_memory(
    pred_files: list[str], gt_files: list[str], decoded: dict[str, Image.Image]
) -> dict:
    """:func:`official_scores` with ``Image.open`` served from already decoded images
    (:func:`decoded_images`): the official evaluation without its file reading."""
    from types import SimpleNamespace

    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    real = ev.Image
    ev.Image = SimpleNamespace(open=decoded.__getitem__)
    try:
        return official_scores(pred_files, gt_files)
    finally:
        ev.Image = real
