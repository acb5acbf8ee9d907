"""Our evaluator equals the official Cityscapes evaluation script to 1e-9 on real label
maps: CamVid test labels converted to Cityscapes label ids, with realistically perturbed
"predictions" (shifted maps, class swaps in blocks, predictions of non-evaluated ids)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.common.cityscapes_layout import official_scores, write_layout
from labelbridge.constants import IGNORE_INDEX
from labelbridge.data.base import read_label_png
from labelbridge.evaluation import ConfusionMatrix
from labelbridge.taxonomy import load_taxonomy

pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")

NUM_IMAGES = 6


@pytest.fixture(scope="module")
def cityscapes_layout(
    camvid_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], list[str]]:
    """Real CamVid test labels as Cityscapes ``*_gtFine_labelIds.png`` plus predictions."""
    label_files = sorted((camvid_root / "testannot").glob("*.png"))[:: 233 // NUM_IMAGES][
        :NUM_IMAGES
    ]
    return write_layout(label_files, tmp_path_factory.mktemp("cs"))


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
