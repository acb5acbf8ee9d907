"""Classifier rows mapped through an ontology (``model.classifier_from``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from labelbridge.config.train import ModelConfig
from labelbridge.errors import CheckpointError, UserError
from labelbridge.models import create_model
from labelbridge.models.classifier_transfer import class_sets, map_rows
from labelbridge.taxonomy.ontology import load_ontology

ONTOLOGY = "camvid11_to_cityscapes"


def test_class_sets_follow_the_mapping_file() -> None:
    onto = load_ontology(ONTOLOGY)
    sets = class_sets(onto)
    names = onto.source.train_names
    assert len(sets) == 11 == onto.extra.num_classes
    by_name = {
        cls.name: [names[k] for k in s]
        for cls, s in zip(onto.extra.train_classes, sets, strict=True)
    }
    assert by_name["Building"] == ["building", "wall"]
    assert by_name["Car"] == ["car", "truck", "bus", "train"]
    assert by_name["Sky"] == ["sky"]


def test_map_rows_means_and_log_count() -> None:
    weight = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    bias = torch.tensor([0.5, 1.5, -1.0])
    sets = [[0, 1], [2], []]
    w = map_rows(weight, sets, bias=False)
    b = map_rows(bias, sets, bias=True)
    assert torch.allclose(w, torch.tensor([[2.0, 3.0], [5.0, 9.0], [0.0, 0.0]]))
    assert torch.allclose(
        b, torch.tensor([1.0 + math.log(2), -1.0, (1.0 / 3.0) - math.log(3)]), atol=1e-6
    )


def test_mapped_logits_are_member_means_plus_log_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Tiny model (1x1 conv heads): everything but the heads is copied, so the new
    logit of class c is exactly mean_{k in S_c} z_k + log |S_c| of the source logits."""
    torch.manual_seed(0)
    src = create_model("tiny:width=8", 19).eval()
    torch.save(src.state_dict(), tmp_path / "city.pth")
    with caplog.at_level(logging.INFO, logger="labelbridge.models.classifier_transfer"):
        dst = create_model(
            "tiny:width=8", 11, weights=tmp_path / "city.pth", classifier_from=ONTOLOGY
        ).eval()
    assert "classifier mapped from cityscapes (19 classes) to camvid11 (11 classes)" in caplog.text
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        z_src, z_dst = src(x), dst(x)
    for c, members in enumerate(class_sets(load_ontology(ONTOLOGY))):
        expect = z_src[:, members].mean(dim=1) + math.log(len(members))
        assert torch.allclose(z_dst[:, c], expect, atol=1e-5), c
    assert torch.equal(dst.stem[0].weight, src.stem[0].weight)


def test_published_background_row_is_dropped(weights_dir: Path) -> None:
    path = weights_dir / "espnetv2_s_0.5_city_1024x512.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = create_model("espnetv2:s=0.5", 11, weights=path, classifier_from=ONTOLOGY)
    w = state["bu_dec_l4.merge_layer.3.weight"]  # (20, ...): 19 classes + background
    names = load_ontology(ONTOLOGY).source.train_names
    building, wall = names.index("building"), names.index("wall")
    assert w.shape[0] == 20
    assert torch.allclose(
        model.bu_dec_l4.merge_layer[3].weight[1], (w[building] + w[wall]) / 2, atol=1e-6
    )


def test_wrong_direction_names_the_tensor(tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.save(create_model("tiny:width=8", 11).state_dict(), tmp_path / "camvid.pth")
    with pytest.raises(CheckpointError, match=r"head\.weight has 11 rows, but cityscapes"):
        create_model("tiny:width=8", 11, weights=tmp_path / "camvid.pth", classifier_from=ONTOLOGY)
    with pytest.raises(CheckpointError, match=r"maps to 11 classes \(camvid11\)"):
        create_model("tiny:width=8", 7, weights=tmp_path / "camvid.pth", classifier_from=ONTOLOGY)


def test_classifier_from_needs_weights_and_excludes_reinit() -> None:
    with pytest.raises(UserError, match="needs weights"):
        create_model("tiny:width=8", 11, classifier_from=ONTOLOGY)
    with pytest.raises(ValueError, match="needs weights"):
        ModelConfig(spec="tiny", classifier_from=ONTOLOGY)
    with pytest.raises(ValueError, match="exclude each other"):
        ModelConfig(spec="tiny", weights="w.pth", classifier_from=ONTOLOGY, reinit_classifier=True)
