"""Mapping suggestion: contingency counting and the proposal rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelbridge.data import create_dataset
from labelbridge.models.base import SegmentationModel
from labelbridge.suggest import Contingency, SuggestThresholds, build_contingency, propose_mapping
from labelbridge.taxonomy import load_ontology, load_taxonomy


def _table(
    counts: dict[str, dict[str, int]], extra="camvid11", source="cityscapes", conf=0.9
) -> Contingency:
    ext, src = load_taxonomy(extra), load_taxonomy(source)
    t = Contingency.empty(ext, src)
    for e, row in counts.items():
        i = [c.name for c in ext.classes].index(e)
        for s, n in row.items():
            k = src.train_names.index(s)
            t.counts[i, k] = n
            t.confidence[i, k] = conf * n
    return t


def test_proposal_thresholds_cap_and_order():
    t = _table(
        {"Car": {"car": 70, "truck": 20, "bus": 6, "road": 4}, "Road": {"road": 95, "sidewalk": 5}}
    )
    p = propose_mapping(t, SuggestThresholds(min_share=0.05, max_classes=3))
    assert p.rows["Car"] == ["car", "truck", "bus"]  # road (4%) below threshold, cap 3
    assert p.rows["Road"] == ["road", "sidewalk"]
    p2 = propose_mapping(t, SuggestThresholds(min_share=0.5))
    assert p2.rows["Car"] == ["car"] and p2.rows["Road"] == ["road"]
    assert p.shares["Car"]["truck"] == pytest.approx(0.2)
    # labels with no pixels are reported and written as ignore; unseen source classes flagged
    assert "Sky" in p.empty_labels
    assert "sky" in p.unseen and "car" not in p.unseen


def test_gap_flagged_only_when_confident():
    counts = {"Road": {"road": 100}, "Unlabelled": {"sky": 60, "building": 30, "road": 10}}
    confident = propose_mapping(_table(counts, conf=0.9))
    assert confident.gaps == {"Unlabelled": {"sky": 0.6, "building": 0.3}}
    unsure = propose_mapping(_table(counts, conf=0.3))
    assert unsure.gaps == {}


def test_suggestion_yaml_is_a_valid_mapping(tmp_path):
    t = _table(
        {
            "Car": {"car": 80, "truck": 20},
            "Fence": {"fence": 50, "building": 50},
            "Building": {"building": 100},
            "Unlabelled": {"sky": 90, "road": 10},
        }
    )
    p = propose_mapping(t, SuggestThresholds(min_share=0.1))
    text = p.to_yaml(t.source, t.extra)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    onto = load_ontology(path)
    assert onto.allowed_names("Car") == ["car", "truck"]
    assert onto.unlabelled == "constrained" and onto.allowed_names("Unlabelled") == ["sky"]
    # 'building' is allowed for Fence and Building: projection goes to the label with most pixels
    assert p.projection == {"building": "Building"}
    assert onto.same_as(p.to_ontology(t.source, t.extra))
    assert "car 80.0%" in text


class _ConstantModel(SegmentationModel):
    def __init__(self, num_classes: int, cls: int) -> None:
        super().__init__(num_classes)
        self.cls = cls

    def forward_raw(self, x):
        logits = torch.zeros(x.shape[0], self.num_classes, *x.shape[-2:])
        logits[:, self.cls] = 5.0
        return {"logits": logits}


def test_contingency_counts_real_pixels(camvid_root):
    ds = create_dataset("camvid", camvid_root, "val")
    src = load_taxonomy("cityscapes")
    table = build_contingency(
        _ConstantModel(19, 13), ds, source=src, sample=3, seed=1, progress=False
    )
    assert table.images == 3
    assert table.counts.sum() == 3 * 360 * 480
    assert table.counts[:, 13].sum() == table.counts.sum()  # everything predicted 'car'
    idx = np.sort(np.random.default_rng(1).choice(len(ds), 3, replace=False))
    sky = sum(int((ds[int(i)].label == 0).sum()) for i in idx)
    assert table.counts[0, 13] == sky
    softmax_max = torch.softmax(torch.tensor([5.0] + [0.0] * 18), 0)[0].item()
    assert table.confidence[0, 13] == pytest.approx(sky * softmax_max, rel=1e-6)
