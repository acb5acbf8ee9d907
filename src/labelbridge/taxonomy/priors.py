"""Ontology priors: keep only the scores of each pixel's allowed source classes, then argmax.

Part of the ontology layer (it applies a mapping's ``allowed`` matrix), so pseudo-labelling
and distillation use the one operation; imported on its own (``labelbridge.taxonomy``
does not load torch).

For a pixel whose extra ground truth is ``e``, ``p~(c) = p(c)`` if ``allowed[e, c]``
else ``0``, and the pseudo-label is ``argmax_c p~(c)``. A pixel whose allowed set is empty
(an all-False row: the mapping says "write ignore"), or whose masked scores are all zero,
gets :data:`~labelbridge.constants.IGNORE_INDEX`. Non-finite scores anywhere are an error,
never class 0. Without priors (Naive Student) the same function runs with
``allowed=None``.

**The void option.** A mapping row may list ``ignore`` beside its classes ("sky or
building, or something outside the source taxonomy", e.g. a LiDAR dataset's void).
For such a pixel the pseudo-label is the teacher's unmasked argmax when that is one of
the allowed classes, and ignore otherwise: the teacher seeing a class the label excludes
is taken as the label's "outside" case rather than forced into the nearest allowed
class. (Without the option the pixel always gets the best allowed class.)

The masking is one gather and one multiply on the scores' device:
``allowed.T[:, gt]`` is ``(K, B, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from labelbridge.constants import IGNORE_INDEX


class NonFiniteScoresError(ValueError):
    """The teacher produced NaN or infinite scores (a broken checkpoint or input)."""


@dataclass
class PriorOutput:
    """Result of :func:`apply_priors` for a batch.

    Attributes:
        labels: ``(B, H, W)`` int64 source train ids ``0..K-1`` or ``IGNORE_INDEX``.
        confidence: ``(B, H, W)`` float32, the masked probability of the chosen class in
            ``[0, 1]``; ``0`` where the label is ignore.
        teacher: ``(B, H, W)`` int64 argmax of the unmasked probabilities.
        masked: ``(B, K, H, W)`` float32 masked probabilities (the input itself when
            ``allowed`` is ``None``).
    """

    labels: torch.Tensor
    confidence: torch.Tensor
    teacher: torch.Tensor
    masked: torch.Tensor

    @property
    def changed(self) -> torch.Tensor:
        """``(B, H, W)`` bool: pixels with a label that differs from the teacher's argmax
        (ignored pixels excluded)."""
        return (self.labels != self.teacher) & (self.labels != IGNORE_INDEX)


def allowed_tensor(allowed: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(E, K)`` bool matrix -> ``(K, E)`` bool tensor on ``device`` (the gather layout)."""
    arr = np.asarray(allowed, dtype=bool)
    if arr.ndim != 2:
        raise ValueError(f"allowed must be (E, K), got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.T)).to(device)


def check_finite(probs: torch.Tensor, what: str = "teacher scores") -> None:
    """Raise :class:`NonFiniteScoresError` if ``probs`` holds NaN or infinity.

    One sum over all values finds any NaN or infinity (``inf - inf`` is NaN too); only when
    the sum is non-finite are the values inspected one by one (so a sum that merely
    overflows is not an error).
    """
    if bool(torch.isfinite(probs.sum())):
        return
    bad = int((~torch.isfinite(probs)).sum())
    if bad:
        raise NonFiniteScoresError(
            f"{what}: {bad} non-finite values (NaN or inf); refusing to turn them into labels "
            "(check the teacher checkpoint and the input images)"
        )


def void_tensor(
    void_allowed: np.ndarray, device: torch.device | str = "cpu"
) -> torch.Tensor | None:
    """``(E,)`` bool rows with the void option -> tensor on ``device``; ``None`` when no
    row has it (the common case costs nothing)."""
    arr = np.asarray(void_allowed, dtype=bool)
    if arr.ndim != 1:
        raise ValueError(f"void_allowed must be (E,), got shape {arr.shape}")
    return torch.from_numpy(arr.copy()).to(device) if arr.any() else None


def apply_priors(
    probs: torch.Tensor,
    gt: torch.Tensor | None,
    allowed_t: torch.Tensor | None,
    *,
    mask: torch.Tensor | None = None,
    void_t: torch.Tensor | None = None,
    void_mask: torch.Tensor | None = None,
    what: str = "teacher scores",
) -> PriorOutput:
    """Masked argmax of class probabilities.

    Args:
        probs: ``(B, K, H, W)`` float probabilities (any non-negative scores work).
        gt: ``(B, H, W)`` integer extra raw ids, or ``None`` when ``allowed_t`` is ``None``.
        allowed_t: ``(K, E)`` bool (see :func:`allowed_tensor`), or ``None`` for no priors.
        mask: ``(B, K, H, W)`` bool, the allowed classes per pixel already gathered (e.g.
            :func:`labelbridge.distill.functional.target_allowed`), instead of ``gt``
            and ``allowed_t``; pixels with no allowed class become ``IGNORE_INDEX``.
        void_t: ``(E,)`` bool, rows with the void option (:func:`void_tensor`), with
            ``gt`` and ``allowed_t``; ``None``: no row has it.
        void_mask: ``(B, H, W)`` bool, the void option per pixel, with ``mask``.
        what: names the images in error messages.

    Returns:
        :class:`PriorOutput`.

    Raises:
        NonFiniteScoresError: NaN or inf in ``probs``.
        ValueError: shapes disagree, ``gt`` holds ids outside ``0..E-1``, or ``mask``
            is given together with ``allowed_t``.

    Example:
        >>> p = torch.tensor([[[[0.7]], [[0.2]], [[0.1]]]])       # B=1, K=3, 1x1
        >>> allowed = allowed_tensor(np.array([[False, True, True]]))  # E=1
        >>> apply_priors(p, torch.zeros(1, 1, 1, dtype=torch.long), allowed).labels.item()
        1
    """
    if probs.ndim != 4:
        raise ValueError(f"probs must be (B, K, H, W), got {tuple(probs.shape)}")
    check_finite(probs, what)
    teacher = probs.max(dim=1).indices
    if void_t is not None and (allowed_t is None or mask is not None):
        raise ValueError(f"{what}: void_t needs gt and allowed_t")
    if mask is not None:
        if allowed_t is not None:
            raise ValueError(f"{what}: give either a per-pixel mask or allowed_t, not both")
        if mask.shape != probs.shape or mask.dtype != torch.bool:
            raise ValueError(
                f"{what}: mask must be bool {tuple(probs.shape)}, got {mask.dtype} "
                f"{tuple(mask.shape)}"
            )
        masked = probs * mask
    elif allowed_t is None:
        masked = probs
    else:
        if gt is None:
            raise ValueError(f"{what}: priors need the extra ground truth, got none")
        if gt.shape != teacher.shape:
            raise ValueError(
                f"{what}: ground truth {tuple(gt.shape)} does not match scores {tuple(probs.shape)}"
            )
        k, e = allowed_t.shape
        if k != probs.shape[1]:
            raise ValueError(
                f"{what}: allowed matrix has {k} source classes, scores have {probs.shape[1]}"
            )
        gt = gt.long()
        lo, hi = int(gt.min()), int(gt.max())
        if lo < 0 or hi >= e:
            raise ValueError(
                f"{what}: ground-truth ids {lo}..{hi} outside the mapping's 0..{e - 1}"
            )
        mask = allowed_t[:, gt].movedim(0, 1)  # (B, K, H, W)
        masked = probs * mask
        if void_t is not None:
            if void_t.shape != (e,):
                raise ValueError(f"{what}: void_t must be ({e},), got {tuple(void_t.shape)}")
            void_mask = void_t[gt]
    confidence, labels = masked.max(dim=1)  # ties: the lowest class id
    confidence = confidence.float()
    empty = confidence <= 0
    if void_mask is not None:
        if mask is None or void_mask.shape != teacher.shape:
            raise ValueError(
                f"{what}: void_mask must be bool {tuple(teacher.shape)} and comes with a mask"
            )
        # the void option: the teacher sees a class this label excludes -> ignore
        outside = ~mask.gather(1, teacher.unsqueeze(1)).squeeze(1)
        empty = empty | (void_mask & outside)
    labels = labels.masked_fill(empty, IGNORE_INDEX)
    confidence = confidence.masked_fill(empty, 0.0)
    return PriorOutput(labels=labels, confidence=confidence, teacher=teacher, masked=masked)


def top_k_soft(
    masked: torch.Tensor, labels: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` classes of the masked probabilities, renormalised over the allowed set.

    Args:
        masked: ``(B, K, H, W)`` masked probabilities.
        labels: ``(B, H, W)`` hard labels; ignored pixels get ids ``IGNORE_INDEX`` and ``0``.
        k: classes kept (clipped to ``K``).

    Returns:
        ``ids`` ``(B, k, H, W)`` uint8 and ``probs`` ``(B, k, H, W)`` float16, best first.
    """
    k = min(int(k), masked.shape[1])
    total = masked.sum(dim=1, keepdim=True)
    norm = masked / total.clamp_min(torch.finfo(masked.dtype).tiny)
    probs, ids = norm.topk(k, dim=1)
    ignored = (labels == IGNORE_INDEX).unsqueeze(1).expand_as(ids)
    ids = ids.masked_fill(ignored, IGNORE_INDEX)
    probs = probs.masked_fill(ignored, 0.0)
    # a zero-probability runner-up is no candidate
    ids = ids.masked_fill(probs <= 0, IGNORE_INDEX)
    return ids.to(torch.uint8), probs.to(torch.float16)
