"""Acceptance on real data (slow): the published ESPNetv2 s=2.0 Cityscapes teacher
pseudo-labels CamVid train and IDD-Lite train; projected back to the extra taxonomy, the
labels with priors agree with the extra ground truth far better than without.

A reduced TTA (one scale, no flip) and the first images of each split keep it to minutes
on a CPU; full-TTA numbers are in the pseudo-labelling report of a full run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelbridge.config.pseudo import PseudoLabelConfig
from labelbridge.pseudo.run import run_pseudo_label

pytestmark = [pytest.mark.slow, pytest.mark.shared]

TEACHER = "espnetv2_s_2.0_city_1024x512.pth"


def _run(weights_dir: Path, root: Path, reader: str, ontology: str, out: Path, limit: int) -> dict:
    cfg = PseudoLabelConfig.model_validate(
        {
            "teacher": {"checkpoint": str(weights_dir / TEACHER)},
            "datasets": [
                {
                    "name": reader,
                    "reader": reader,
                    "root": str(root),
                    "split": "train",
                    "ontology": ontology,
                    "limit": limit,
                }
            ],
            "tta": {"flip": False, "scales": [1.0]},
            "priors": True,
            "outputs": {"previews": 1},
            "output": str(out),
            "device": "cpu",
        }
    )
    (summary,) = run_pseudo_label(cfg)
    report = json.loads((out / reader / "report.json").read_text())
    assert report["complete"] and summary.processed == limit
    agreement = report["agreement_with_extra_gt"]
    print(
        f"{reader}: agreement with priors {agreement['pseudo_labels']:.4f}, without {agreement['teacher']:.4f}"
    )
    return agreement


def test_camvid_train_priors_agree_with_ground_truth(
    weights_dir: Path, camvid_root: Path, tmp_path: Path
) -> None:
    agreement = _run(
        weights_dir, camvid_root, "camvid", "camvid11_to_cityscapes", tmp_path, limit=24
    )
    assert agreement["pseudo_labels"] >= 0.99
    assert agreement["teacher"] <= agreement["pseudo_labels"] - 0.05


def test_idd_lite_train_priors_agree_with_ground_truth(
    weights_dir: Path, idd_lite_root: Path, tmp_path: Path
) -> None:
    agreement = _run(
        weights_dir, idd_lite_root, "idd_lite", "idd_level1_to_cityscapes", tmp_path, limit=24
    )
    # IDD level-1 rows allow classes that project to other IDD labels (drivable: terrain ->
    # non-drivable; road-side objects: sidewalk, building), so full agreement is out of reach
    # by construction; full TTA on all 1403 images gives 90.9% with priors, 77.7% without.
    assert agreement["pseudo_labels"] >= 0.85
    assert agreement["teacher"] <= agreement["pseudo_labels"] - 0.05
