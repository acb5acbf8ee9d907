"""Hand-computed checks of the soft-label and partial-label losses and of the target stack."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data.target_stack import TargetLayout, Targets
from labelbridge.engine.target_losses import partial_nll, soft_cross_entropy, target_losses
from labelbridge.taxonomy.partial import NO_SET, PartialSetTable, set_ids


def _logits(seed: int = 0, b: int = 2, k: int = 4, h: int = 3, w: int = 5) -> torch.Tensor:
    return torch.randn(b, k, h, w, generator=torch.Generator().manual_seed(seed))


def test_partial_nll_with_singleton_sets_is_the_cross_entropy() -> None:
    logits = _logits()
    labels = torch.randint(0, 4, (2, 3, 5), generator=torch.Generator().manual_seed(1))
    labels[0, 0, :2] = IGNORE_INDEX
    table = torch.eye(4, dtype=torch.bool)  # row c = {c}
    sets = torch.where(labels == IGNORE_INDEX, torch.full_like(labels, NO_SET), labels)
    loss, has = partial_nll(logits, sets, table)
    ce = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="none")
    assert torch.allclose(loss, ce, atol=1e-6)
    assert has.sum() == 28 and not has[0, 0, :2].any()
    total = target_losses(
        logits, Targets(labels=torch.full_like(labels, IGNORE_INDEX), sets=sets), table=table
    )
    assert total["loss"].item() == pytest.approx(
        F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX).item(), abs=1e-6
    )


def test_partial_nll_by_hand_and_its_gradient_keeps_the_mass_inside_the_set() -> None:
    z = torch.tensor([1.0, 2.0, 0.5, -1.0]).view(1, 4, 1, 1).requires_grad_(True)
    table = torch.tensor([[True, True, False, False]])  # A = {0, 1}
    loss, _ = partial_nll(z, torch.zeros(1, 1, 1, dtype=torch.long), table)
    e = [math.exp(v) for v in (1.0, 2.0, 0.5, -1.0)]
    p_a = (e[0] + e[1]) / sum(e)
    assert loss.item() == pytest.approx(-math.log(p_a), rel=1e-6)
    loss.sum().backward()
    p = torch.softmax(z.detach().view(4), 0)
    grad = z.grad.view(4)
    # outside A the gradient is p_c; inside, p_c (1 - 1/P_A): the renormalised
    # distribution within A does not move
    assert torch.allclose(grad[2:], p[2:], atol=1e-6)
    assert torch.allclose(grad[:2] / p[:2], torch.full((2,), 1 - 1 / p_a), atol=1e-6)
    # the same loss whatever the split of the mass inside A
    z2 = torch.tensor([2.0, 1.0, 0.5, -1.0]).view(1, 4, 1, 1)
    z2[0, :2] = torch.log(torch.tensor([e[0] + e[1] - 1.0, 1.0])).view(2, 1, 1)
    loss2, _ = partial_nll(z2, torch.zeros(1, 1, 1, dtype=torch.long), table)
    assert loss2.item() == pytest.approx(loss.item(), rel=1e-6)


def test_partial_nll_ignores_pixels_without_a_set() -> None:
    logits = _logits().requires_grad_(True)
    table = torch.ones(1, 4, dtype=torch.bool)
    sets = torch.full((2, 3, 5), NO_SET, dtype=torch.long)
    loss, has = partial_nll(logits, sets, table)
    assert not has.any() and loss.abs().sum() == 0
    out = target_losses(
        logits, Targets(labels=torch.full((2, 3, 5), IGNORE_INDEX), sets=sets), table=table
    )
    out["loss"].backward()
    assert out["loss"].item() == 0 and logits.grad.abs().sum() == 0


def test_soft_cross_entropy_by_hand_renormalises_the_top_k() -> None:
    z = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1)
    log_p = F.log_softmax(z, 1)
    ids = torch.tensor([2, 0]).view(1, 2, 1, 1)
    probs = torch.tensor([0.6, 0.2]).view(1, 2, 1, 1)  # 0.2 of the mass outside the top 2
    loss, has = soft_cross_entropy(log_p, ids, probs)
    q = (0.75, 0.25)
    assert loss.item() == pytest.approx(
        -(q[0] * log_p[0, 2, 0, 0] + q[1] * log_p[0, 0, 0, 0]).item()
    )
    assert has.all()
    # a one-hot soft label is the cross-entropy; no candidate is no loss
    one = soft_cross_entropy(log_p, torch.tensor([1, IGNORE_INDEX]).view(1, 2, 1, 1), probs)[0]
    assert one.item() == pytest.approx(-log_p[0, 1, 0, 0].item())
    none, has = soft_cross_entropy(log_p, torch.full((1, 2, 1, 1), IGNORE_INDEX), probs)
    assert none.item() == 0 and not has.any()


def test_a_hard_only_batch_gives_the_mean_cross_entropy() -> None:
    logits = _logits(3)
    labels = torch.randint(0, 4, (2, 3, 5), generator=torch.Generator().manual_seed(4))
    labels[1, 2] = IGNORE_INDEX
    out = target_losses(logits, Targets(labels=labels))
    ref = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    assert out["loss"].item() == pytest.approx(ref.item(), abs=1e-6)
    assert set(out) == {"loss", "hard"}


def test_mixed_terms_share_one_pixel_count() -> None:
    logits = _logits(5, b=1, k=3, h=1, w=3)
    log_p = F.log_softmax(logits, 1)
    labels = torch.tensor([[[0, IGNORE_INDEX, IGNORE_INDEX]]])
    ids = torch.tensor([[[IGNORE_INDEX, 1, IGNORE_INDEX]]]).view(1, 1, 1, 3)
    probs = torch.ones(1, 1, 1, 3)
    table = torch.tensor([[False, True, True]])
    sets = torch.tensor([[[NO_SET, NO_SET, 0]]])
    out = target_losses(logits, Targets(labels, ids, probs, sets), table=table, partial_weight=0.5)
    hard = -log_p[0, 0, 0, 0]
    soft = -log_p[0, 1, 0, 1]
    part = -torch.logsumexp(logits[0, 1:, 0, 2], 0) + torch.logsumexp(logits[0, :, 0, 2], 0)
    assert out["loss"].item() == pytest.approx(((hard + soft + 0.5 * part) / 3).item(), rel=1e-5)


def test_stack_round_trip_and_padding_values() -> None:
    layout = TargetLayout(soft_k=2, partial=True)
    assert layout.channels == 6
    assert layout.pad_values == (255.0, 255.0, 255.0, 0.0, 0.0, -1.0)
    labels = np.array([[1, 255]], dtype=np.uint8)
    ids = np.array([[[3, 0]], [[255, 2]]], dtype=np.uint8)
    probs = np.array([[[0.7, 1.0]], [[0.0, 0.0]]], dtype=np.float16)
    sets = np.array([[300, NO_SET]], dtype=np.int32)
    stack = layout.pack(labels, soft_ids=ids[:1], soft_probs=probs[:1], sets=sets)
    t = layout.unpack(torch.from_numpy(stack)[None])
    assert t.labels.tolist() == [[[1, 255]]]
    assert t.soft_ids.tolist() == [[[[3, 0]], [[255, 255]]]]  # the missing 2nd candidate: none
    assert t.soft_probs[0, 0, 0].tolist() == pytest.approx([0.7, 1.0], abs=1e-3)
    assert t.sets.tolist() == [[[300, -1]]]


def test_set_table_stacks_blocks_and_maps_raw_ids_to_rows() -> None:
    a = np.array([[True, False], [False, False], [True, True]])
    b = np.array([[False, True], [True, True]])
    table = PartialSetTable.stack([a, b])
    assert table.offsets == (0, 3) and table.table.shape == (5, 2)
    assert set_ids(np.array([[0, 1, 2]]), a, 0).tolist() == [[0, NO_SET, 2]]
    assert set_ids(np.array([[1, 0]]), b, 3).tolist() == [[4, 3]]
    with pytest.raises(ValueError, match="0..1"):
        set_ids(np.array([[2]]), b, 3)
