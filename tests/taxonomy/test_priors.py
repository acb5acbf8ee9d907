"""Ontology priors: masked argmax with hand-computed expectations and a property test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy import load_ontology
from labelbridge.taxonomy.priors import (
    NonFiniteScoresError,
    allowed_tensor,
    apply_priors,
    top_k_soft,
)

# 3 source classes, 4 extra ids: 0 -> {0}, 1 -> {1, 2}, 2 -> {} (ignore), 3 -> all
ALLOWED = np.array(
    [
        [True, False, False],
        [False, True, True],
        [False, False, False],
        [True, True, True],
    ]
)


def _probs(per_pixel: list[list[list[float]]]) -> torch.Tensor:
    """``[row][col][class]`` -> ``(1, K, H, W)``."""
    return torch.tensor(per_pixel, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0)


def test_two_by_two_hand_computed() -> None:
    probs = _probs(
        [
            [[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]],
            [[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]],
        ]
    )
    gt = torch.tensor([[[0, 1], [2, 3]]])
    out = apply_priors(probs, gt, allowed_tensor(ALLOWED))
    # (0,0): e=0 allows {0} -> 0 (0.1); (0,1): e=1 allows {1,2} -> 2 (0.3 > 0.2);
    # (1,0): e=2 allows nothing -> ignore; (1,1): e=3 unconstrained -> 0 (0.7)
    assert out.labels.tolist() == [[[0, 2], [IGNORE_INDEX, 0]]]
    assert out.teacher.tolist() == [[[1, 0], [2, 0]]]
    assert out.confidence[0].flatten().tolist() == pytest.approx([0.1, 0.3, 0.0, 0.7])
    assert out.changed.tolist() == [[[True, True], [False, False]]]


def test_three_by_three_hand_computed() -> None:
    p = [
        [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]],
        [[0.4, 0.35, 0.25], [0.3, 0.3, 0.4], [0.05, 0.05, 0.9]],
        [[0.34, 0.33, 0.33], [0.0, 0.9, 0.1], [0.6, 0.0, 0.4]],
    ]
    gt = torch.tensor([[[1, 1, 0], [1, 0, 3], [2, 1, 1]]])
    out = apply_priors(_probs(p), gt, allowed_tensor(ALLOWED))
    # row 0: {1,2} with 0.1 vs 0.1 -> tie goes to the lower id 1; {1,2} -> 1; {0} -> 0
    # row 1: {1,2} -> 1 (0.35); {0} -> 0; unconstrained -> 2 (0.9)
    # row 2: empty set -> ignore; {1,2} -> 1 (0.9); {1,2} -> 2 (0.4 beats 0.0, not 0.6 of class 0)
    expected = [[1, 1, 0], [1, 0, 2], [IGNORE_INDEX, 1, 2]]
    assert out.labels[0].tolist() == expected


def test_masked_scores_all_zero_gives_ignore_not_class_zero() -> None:
    probs = _probs([[[1.0, 0.0, 0.0]]])
    gt = torch.tensor([[[1]]])  # allows {1, 2}, both have probability 0
    out = apply_priors(probs, gt, allowed_tensor(ALLOWED))
    assert out.labels.item() == IGNORE_INDEX
    assert out.confidence.item() == 0.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_are_an_error(bad: float) -> None:
    probs = _probs([[[0.2, bad, 0.3], [0.2, 0.5, 0.3]]])
    with pytest.raises(NonFiniteScoresError, match="non-finite"):
        apply_priors(probs, torch.tensor([[[3, 3]]]), allowed_tensor(ALLOWED))
    with pytest.raises(NonFiniteScoresError):
        apply_priors(probs, None, None)


def test_priors_off_is_plain_argmax() -> None:
    probs = _probs([[[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]])
    out = apply_priors(probs, None, None)
    assert out.labels.tolist() == [[[1, 0]]]
    assert not out.changed.any()


def test_gt_ids_outside_the_mapping_are_refused() -> None:
    probs = _probs([[[0.1, 0.6, 0.3]]])
    with pytest.raises(ValueError, match="outside"):
        apply_priors(probs, torch.tensor([[[4]]]), allowed_tensor(ALLOWED))


def test_soft_labels_renormalised_over_allowed_set() -> None:
    probs = _probs([[[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]])
    gt = torch.tensor([[[1, 2]]])
    out = apply_priors(probs, gt, allowed_tensor(ALLOWED))
    ids, sp = top_k_soft(out.masked, out.labels, k=3)
    assert ids[0, :, 0, 0].tolist() == [1, 2, IGNORE_INDEX]  # class 0 not allowed
    assert sp[0, :, 0, 0].float().tolist() == pytest.approx([2 / 3, 1 / 3, 0.0], abs=1e-3)
    assert ids[0, :, 0, 1].tolist() == [IGNORE_INDEX] * 3  # ignore pixel
    assert ids.dtype == torch.uint8 and sp.dtype == torch.float16


def test_camvid_mapping_forces_road_and_leaves_unlabelled_free() -> None:
    onto = load_ontology("camvid11_to_cityscapes")
    k = onto.source.num_classes
    road, sidewalk = onto.source.train_id_of("road"), onto.source.train_id_of("sidewalk")
    probs = torch.full((1, k, 1, 2), 0.01)
    probs[0, sidewalk] = 0.8  # the teacher says sidewalk in both pixels
    gt = torch.tensor([[[onto.extra.get("Road").id, onto.extra.get("Unlabelled").id]]])
    out = apply_priors(probs, gt, allowed_tensor(onto.allowed))
    assert out.labels.tolist() == [[[road, sidewalk]]]


@st.composite
def _case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = draw(st.integers(1, 6))
    e = draw(st.integers(1, 5))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    probs = rng.random((1, k, h, w)).astype(np.float32)
    probs[rng.random(probs.shape) < 0.2] = 0.0  # some exact zeros
    allowed = rng.random((e, k)) < draw(st.floats(0.0, 1.0))
    gt = rng.integers(0, e, size=(1, h, w))
    return probs, allowed, gt


@settings(max_examples=200, deadline=None)
@given(_case())
def test_output_always_allowed_or_ignore(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    probs, allowed, gt = case
    out = apply_priors(torch.from_numpy(probs), torch.from_numpy(gt), allowed_tensor(allowed))
    labels = out.labels.numpy()[0]
    for (i, j), lab in np.ndenumerate(labels):
        e = gt[0, i, j]
        masked = probs[0, :, i, j] * allowed[e]
        if lab == IGNORE_INDEX:
            assert masked.max() <= 0  # empty set or all allowed scores zero
        else:
            assert allowed[e, lab]
            assert masked[lab] == masked.max() > 0


@settings(max_examples=100, deadline=None)
@given(_case())
def test_precomputed_mask_gives_the_same_output(
    case: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    probs, allowed, gt = case
    p, g, a = torch.from_numpy(probs), torch.from_numpy(gt), allowed_tensor(allowed)
    by_gt = apply_priors(p, g, a)
    by_mask = apply_priors(p, None, None, mask=a[:, g].movedim(0, 1))
    assert torch.equal(by_gt.labels, by_mask.labels)
    assert torch.equal(by_gt.confidence, by_mask.confidence)
    assert torch.equal(by_gt.masked, by_mask.masked)


def test_mask_with_allowed_matrix_or_wrong_shape_is_refused() -> None:
    p = torch.rand(1, 3, 2, 2)
    a = allowed_tensor(np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="not both"):
        apply_priors(p, None, a, mask=torch.ones(1, 3, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must be bool \(1, 3, 2, 2\)"):
        apply_priors(p, None, None, mask=torch.ones(1, 3, 2, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be bool"):
        apply_priors(p, None, None, mask=torch.ones(1, 3, 2, 2))
