"""The one training loss over hard, soft and partial targets
(:class:`~labelbridge.data.target_stack.Targets`).

One mean over the pixels that carry any target:
``(sum_hard CE + sum_soft CE(q, p) + w * sum_partial -log sum_{c in A} p_c) / N``, so a
hard-only batch gives exactly the mean cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data.target_stack import Targets
from labelbridge.taxonomy.partial import NO_SET


def soft_cross_entropy(
    log_probs: torch.Tensor, ids: torch.Tensor, probs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel ``-sum_j q_j log p_{id_j}`` over the soft candidates of each pixel.

    Args:
        log_probs: ``(B, K, H, W)`` log-softmax of the logits.
        ids: ``(B, k, H, W)`` int64 class ids, ``IGNORE_INDEX`` = no candidate.
        probs: ``(B, k, H, W)`` their probabilities ``q`` (renormalised here over the
            valid candidates, so the mass outside the stored top k is spread over them).

    Returns:
        ``(B, H, W)`` losses (0 where a pixel has no candidate) and the ``(B, H, W)``
        bool mask of pixels with a candidate.
    """
    valid = ids != IGNORE_INDEX
    q = torch.where(valid, probs.float(), torch.zeros_like(probs, dtype=torch.float32))
    total = q.sum(dim=1, keepdim=True)
    has = total.squeeze(1) > 0
    q = q / total.clamp_min(torch.finfo(q.dtype).tiny)
    picked = log_probs.gather(1, torch.where(valid, ids, torch.zeros_like(ids)))
    loss = -(q * picked).sum(dim=1)
    return torch.where(has, loss, torch.zeros_like(loss)), has


def partial_nll(
    logits: torch.Tensor, sets: torch.Tensor, table: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel ``-log sum_{c in A} p_c`` with ``A`` the pixel's allowed set.

    The loss depends only on the mass of ``A``: its gradient moves no probability
    between classes inside ``A`` (``dL/dz_c = p_c (1 - 1/P_A)`` for ``c`` in ``A``,
    ``p_c`` outside), and with singleton sets it is the cross-entropy.

    Args:
        logits: ``(B, K, H, W)``.
        sets: ``(B, H, W)`` int64 rows of ``table`` or ``NO_SET``.
        table: ``(S, K)`` bool allowed sets (every row non-empty where used).

    Returns:
        ``(B, H, W)`` losses (0 where ``NO_SET``) and the bool mask of pixels with a set.
    """
    has = sets != NO_SET
    rows = table[torch.where(has, sets, torch.zeros_like(sets))]  # (B, H, W, K)
    z = logits.permute(0, 2, 3, 1).float()
    inside = z.masked_fill(~rows, float("-inf")).logsumexp(dim=-1)
    loss = z.logsumexp(dim=-1) - inside
    return torch.where(has, loss, torch.zeros_like(loss)), has


def target_losses(
    logits: torch.Tensor,
    targets: Targets,
    *,
    table: torch.Tensor | None = None,
    partial_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """``{"loss": total, "hard": ..., "soft": ..., "partial": ...}`` of a batch: each term
    summed over its pixels, all divided by the count of pixels with any target.

    Args:
        logits: ``(B, K, H, W)`` (resized to the targets' size if smaller).
        targets: the batch's :class:`Targets`.
        table: ``(S, K)`` bool partial-label sets (with ``targets.sets``).
        partial_weight: weight ``w`` of the partial term.
    """
    if logits.shape[-2:] != targets.labels.shape[-2:]:
        logits = F.interpolate(
            logits, size=targets.labels.shape[-2:], mode="bilinear", align_corners=False
        )
    log_p = F.log_softmax(logits.float(), dim=1)
    hard = F.nll_loss(log_p, targets.labels, ignore_index=IGNORE_INDEX, reduction="none")
    valid = targets.labels != IGNORE_INDEX
    sums = {"hard": hard.sum()}
    if targets.soft_ids is not None and targets.soft_probs is not None:
        soft, has = soft_cross_entropy(log_p, targets.soft_ids, targets.soft_probs)
        sums["soft"], valid = soft.sum(), valid | has
    if targets.sets is not None:
        if table is None:
            raise ValueError("partial-label targets need their table of sets")
        part, has = partial_nll(logits, targets.sets, table)
        sums["partial"], valid = partial_weight * part.sum(), valid | has
    count = valid.sum().clamp_min(1)
    parts = {name: value / count for name, value in sums.items()}
    total = sum(parts.values(), torch.zeros((), device=logits.device))
    return {"loss": total, **parts}
