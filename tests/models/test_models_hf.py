"""Hugging Face wrappers with tiny configs: shapes, backward, Mask2Former targets and
scores, local from_pretrained with another class count, self-contained checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.models import (
    Mask2FormerSegmentation,
    SegformerSegmentation,
    UperNetSegmentation,
    create_model,
    load_checkpoint,
    save_checkpoint,
    semantic_to_mask_targets,
)
from labelbridge.models.hf import semantic_scores
from labelbridge.taxonomy import Taxonomy

transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)


def tiny_segformer_config(num_labels: int):
    return transformers.SegformerConfig(
        hidden_sizes=[8, 16, 32, 64],
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 1, 1],
        decoder_hidden_size=16,
        num_labels=num_labels,
    )


def tiny_mask2former_config(num_labels: int):
    swin = transformers.SwinConfig(
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    return transformers.Mask2FormerConfig(
        backbone_config=swin,
        feature_size=32,  # the pixel decoder's GroupNorm uses 32 groups
        mask_feature_size=32,
        hidden_dim=32,
        encoder_feedforward_dim=32,
        encoder_layers=1,
        decoder_layers=2,
        num_attention_heads=2,
        dim_feedforward=32,
        num_queries=6,
        train_num_points=64,
        num_labels=num_labels,
    )


def tiny_upernet_config(num_labels: int):
    backbone = transformers.ConvNextConfig(
        hidden_sizes=[8, 16, 32, 64],
        depths=[1, 1, 1, 1],
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    return transformers.UperNetConfig(
        backbone_config=backbone,
        hidden_size=16,
        auxiliary_in_channels=32,
        auxiliary_channels=8,
        num_labels=num_labels,
    )


def _taxonomy(k: int) -> Taxonomy:
    return Taxonomy.from_dict(
        {
            "name": f"t{k}",
            "classes": [{"id": i, "name": f"c{i}", "color": [i, i, i]} for i in range(k)],
        }
    )


@pytest.mark.parametrize(
    ("cls", "make_config"),
    [
        (SegformerSegmentation, tiny_segformer_config),
        (UperNetSegmentation, tiny_upernet_config),
        (Mask2FormerSegmentation, tiny_mask2former_config),
    ],
)
def test_forward_shape_and_backward(cls, make_config) -> None:
    torch.manual_seed(0)
    model = cls.from_config(make_config(5))
    images = torch.rand(2, 3, 40, 56)  # not multiples of 32: padded inside
    out = model(images)
    assert out.shape == (2, 5, 40, 56)
    assert torch.isfinite(out).all()
    target = torch.randint(0, 5, (2, 40, 56))
    target[:, :4] = IGNORE_INDEX
    loss = model.compute_loss(images, target)["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > len(grads) // 2


def test_mask2former_target_conversion_by_hand() -> None:
    target = torch.tensor(
        [
            [[2, 2, 0], [IGNORE_INDEX, 2, 0]],
            [
                [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],
                [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],
            ],
        ]
    )
    masks, classes = semantic_to_mask_targets(target)
    assert classes[0].tolist() == [0, 2]
    assert masks[0].tolist() == [
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
        [[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]],
    ]
    assert masks[0].dtype == torch.float32
    assert classes[1].numel() == 0 and masks[1].shape == (0, 2, 3)


def test_mask2former_loss_with_an_all_ignore_image() -> None:
    torch.manual_seed(0)
    model = Mask2FormerSegmentation.from_config(tiny_mask2former_config(3))
    target = torch.full((2, 32, 32), IGNORE_INDEX)
    target[0, :16] = 1
    loss = model.compute_loss(torch.rand(2, 3, 32, 32), target)["loss"]
    assert torch.isfinite(loss)


def test_semantic_scores_by_hand() -> None:
    # one image, two queries, two classes + no-object; 1x2 pixels
    class_logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.0 + 1e-9, 0.8, 0.2]]]))
    mask_logits = torch.tensor([[[[0.0, 100.0]], [[100.0, -100.0]]]])  # sigmoid: [.5, 1], [1, 0]
    scores = semantic_scores(class_logits, mask_logits)
    assert scores.shape == (1, 2, 1, 2)
    expected = torch.tensor([[[[0.25, 0.5]], [[0.125 + 0.8, 0.25]]]])
    assert torch.allclose(scores, expected, atol=1e-6)


def test_named_hf_specs_build_offline() -> None:
    with torch.device("meta"):
        model = create_model("segformer:b0", 7)
    assert model.hf.config.hidden_sizes == [32, 64, 160, 256]
    assert model.hf.decode_head.classifier.out_channels == 7


def test_hf_local_folder_with_other_class_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    hf_model = transformers.SegformerForSemanticSegmentation(tiny_segformer_config(4))
    hf_model.save_pretrained(tmp_path / "seg")
    with caplog.at_level(logging.INFO, logger="labelbridge.models.hf"):
        model = create_model(f"hf:{tmp_path / 'seg'}", 6)
    assert isinstance(model, SegformerSegmentation)
    assert model.hf.decode_head.classifier.out_channels == 6
    assert "4 labels stored, 6 requested" in caplog.text
    # everything but the classifier came from the folder
    saved, loaded = hf_model.state_dict(), model.hf.state_dict()
    assert set(saved) == set(loaded)
    differing = sorted(
        k
        for k in saved
        if saved[k].shape != loaded[k].shape or not torch.equal(saved[k], loaded[k])
    )
    assert differing == ["decode_head.classifier.bias", "decode_head.classifier.weight"]
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 6, 32, 32)


def test_hf_missing_folder_is_checkpoint_error(tmp_path: Path) -> None:
    from labelbridge.errors import CheckpointError

    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="empty"):
        create_model(f"hf:{tmp_path / 'empty'}", 3)


def test_hf_checkpoint_is_self_contained(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Mask2FormerSegmentation.from_config(tiny_mask2former_config(3)).eval()
    save_checkpoint(tmp_path / "m2f.pt", model, spec="mask2former:swin-t", taxonomy=_taxonomy(3))
    loaded = load_checkpoint(tmp_path / "m2f.pt")
    assert isinstance(loaded.model, Mask2FormerSegmentation)
    assert loaded.model.hf.config.num_queries == 6  # rebuilt from the stored config, not the spec
    x = torch.rand(1, 3, 64, 64)  # GroupNorm needs more than one value per group at stride 32
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), model(x), atol=1e-5)
