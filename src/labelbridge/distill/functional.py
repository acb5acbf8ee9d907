"""Functional losses of distillation: KL at a temperature (optionally restricted to the
classes an ontology allows), masked cross-entropy, the teacher's ontology-constrained
pseudo-labels, and the per-pixel allowed sets of a target batch. Pure functions of
tensors; the loss terms (:mod:`labelbridge.distill.terms`) call them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy.priors import apply_priors

#: Target label maps carry ``raw id + TARGET_LABEL_OFFSET`` so that the augmentation's
#: padding (``IGNORE_INDEX``, always below the offset) stays distinguishable from a raw
#: id that happens to equal ``IGNORE_INDEX``.
TARGET_LABEL_OFFSET: int = 256


def resize_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, h, w)`` to ``size`` ``(H, W)`` (no-op when equal)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def kl_distillation(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float
) -> torch.Tensor:
    """``T**2 * KL(softmax(t / T) || softmax(s / T))``, summed over classes, mean over pixels.

    Args:
        student_logits: ``(B, C, h, w)`` student scores (any real values).
        teacher_logits: ``(B, C, H, W)`` teacher scores; resized to the student's size
            when the sizes differ.
        temperature: ``T > 0``; higher values soften both distributions.

    Returns:
        Scalar ``>= 0``; zero exactly when the two softened distributions agree.
    """
    if student_logits.shape[1] != teacher_logits.shape[1]:
        raise ValueError(
            f"student has {student_logits.shape[1]} classes, teacher {teacher_logits.shape[1]}"
        )
    teacher_logits = resize_to(teacher_logits, student_logits.shape[-2:])
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, log_target=True, reduction="none").sum(dim=1)
    return kl.mean() * temperature**2


def constrained_kl_distillation(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    allowed: torch.Tensor,
    *,
    temperature: float,
) -> tuple[torch.Tensor, int]:
    """KL distillation towards the teacher's distribution *restricted to each pixel's
    allowed classes* (the priors applied to soft targets).

    The target is ``q~(c) = q(c) [c allowed] / sum_{c' allowed} q(c')`` with
    ``q = softmax(teacher / T)``: the ontology says the pixel cannot be any other class,
    so the teacher's mass there is dropped instead of being taught. Its argmax is the
    pixel's prior-corrected pseudo-label (:func:`teacher_pseudo_labels`). Pixels with no
    allowed class (ignore rows, augmentation padding) are left out.

    Args:
        student_logits: ``(B, C, h, w)`` student scores (resized to ``allowed``'s size).
        teacher_logits: ``(B, C, H', W')`` teacher scores (resized likewise).
        allowed: ``(B, C, H, W)`` bool, see :func:`target_allowed`.
        temperature: ``T > 0``.

    Returns:
        ``(T**2 * mean KL over the kept pixels, number of kept pixels)``; the value is 0
        (with a graph) when no pixel is kept.
    """
    if (
        student_logits.shape[1] != teacher_logits.shape[1]
        or allowed.shape[1] != student_logits.shape[1]
    ):
        raise ValueError(
            f"class counts differ: student {student_logits.shape[1]}, teacher "
            f"{teacher_logits.shape[1]}, allowed {allowed.shape[1]}"
        )
    size = allowed.shape[-2:]
    s = resize_to(student_logits.float(), size) / temperature
    t = resize_to(teacher_logits.float(), size) / temperature
    kept = allowed.any(dim=1)  # (B, H, W)
    n = int(kept.sum())
    if n == 0:
        return student_logits.sum() * 0.0, 0
    # pixels without an allowed class get a full mask so that no row is all -inf
    mask = allowed | ~kept.unsqueeze(1)
    log_q = F.log_softmax(t.masked_fill(~mask, float("-inf")), dim=1)
    log_p = F.log_softmax(s, dim=1)
    q = log_q.exp()
    # q == 0 outside the allowed set: those terms are 0 (not 0 * -inf)
    kl = (q * (log_q.masked_fill(~mask, 0.0) - log_p)).sum(dim=1)
    return (kl * kept).sum() / n * temperature**2, n


def agreement_mask(teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pixels where the teacher's argmax equals the label, as an "allowed" mask.

    Where a source label (ground truth, or a prior-corrected pseudo-label) and the teacher
    disagree, the teacher's distribution teaches the error the label corrects; KD on the
    agreeing pixels only keeps the teacher's soft knowledge without that conflict.

    Args:
        teacher_logits: ``(B, C, h, w)`` (resized to the labels' size).
        labels: ``(B, H, W)`` int64 train ids or ``IGNORE_INDEX``.

    Returns:
        ``(B, C, H, W)`` bool: every class at agreeing pixels, none elsewhere (ignored
        pixels included), for :func:`constrained_kl_distillation`.
    """
    t = resize_to(teacher_logits, labels.shape[-2:])
    agree = (t.argmax(dim=1) == labels) & (labels != IGNORE_INDEX)
    return agree.unsqueeze(1).expand(-1, t.shape[1], -1, -1)


def target_allowed(
    extra_labels: torch.Tensor,
    domains: torch.Tensor,
    priors: Sequence[torch.Tensor | None],
    num_classes: int,
) -> torch.Tensor:
    """Per pixel, the classes its target ground truth allows.

    Args:
        extra_labels: ``(B, H, W)`` int64 encoded extra raw ids (``raw +
            TARGET_LABEL_OFFSET``; lower values mark padding), see
            :func:`teacher_pseudo_labels`.
        domains: ``(B,)`` int64 index into ``priors``.
        priors: per domain a ``(K, E)`` bool allowed tensor, or ``None`` (every class).
        num_classes: ``K``.

    Returns:
        ``(B, K, H, W)`` bool; all False at padding pixels and ignore rows.
    """
    b, h, w = extra_labels.shape
    out = torch.ones((b, num_classes, h, w), dtype=torch.bool, device=extra_labels.device)
    raw = (extra_labels - TARGET_LABEL_OFFSET).clamp_min(0)
    for d in torch.unique(domains).tolist():
        allowed_t = priors[d] if d < len(priors) else None
        if allowed_t is None:
            continue
        idx = (domains == d).nonzero().flatten()
        allowed_t = allowed_t.to(extra_labels.device)
        gt = raw[idx].clamp_max(allowed_t.shape[1] - 1)
        out[idx] = allowed_t[:, gt].movedim(0, 1)
    return out & (extra_labels >= TARGET_LABEL_OFFSET).unsqueeze(1)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy, ``IGNORE_INDEX`` ignored; zero (with a graph) when every
    pixel is ignored, instead of PyTorch's NaN.

    Args:
        logits: ``(B, C, H, W)``.
        target: ``(B, H, W)`` int64 train ids in ``[0, C)`` or ``IGNORE_INDEX``.
    """
    if logits.shape[-2:] != target.shape[-2:]:
        logits = resize_to(logits, target.shape[-2:])
    if not bool((target != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX)


def teacher_pseudo_labels(
    teacher_logits: torch.Tensor,
    *,
    allowed: torch.Tensor | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Hard labels from the teacher, constrained by another taxonomy's ground truth.

    ``allowed`` is :func:`target_allowed` of the target batch: for a sample of a domain
    with an ontology, ``p~(c) = p(c) * allowed[c]`` (the classes the pixel's extra ground
    truth allows), the label is ``argmax p~``, and a pixel whose allowed set is empty
    becomes ``IGNORE_INDEX`` (never class 0); this is
    :func:`labelbridge.taxonomy.priors.apply_priors`. Samples of a domain without an
    ontology get the plain argmax; padding pixels (all False) become ``IGNORE_INDEX``.
    With ``threshold``, pixels whose confidence renormalised over the allowed classes,
    ``max p~ / sum p~``, is below it become ``IGNORE_INDEX``.

    Args:
        teacher_logits: ``(B, K, H, W)`` teacher scores.
        allowed: ``(B, K, H, W)`` bool, or ``None`` (plain argmax everywhere).
        threshold: confidence in ``[0, 1]``, or ``None``.

    Returns:
        ``(B, H, W)`` int64 in ``[0, K)`` or ``IGNORE_INDEX``.
    """
    probs = torch.softmax(teacher_logits.float(), dim=1)
    out = apply_priors(probs, None, None, mask=allowed, what="teacher scores on target images")
    labels = out.labels
    if threshold is not None:
        total = out.masked.sum(dim=1).clamp_min(torch.finfo(out.masked.dtype).tiny)
        labels = labels.masked_fill(out.confidence / total < threshold, IGNORE_INDEX)
    return labels
