"""The target stack: what a student learns from besides hard labels, in one tensor.

A training set whose entries all give hard labels yields ``(H, W)`` int64 train ids per
sample, as always. Once an entry reads soft or partial labels, every sample of the stage
yields a *target stack*: one ``(C, H, W)`` float32 tensor that batching, padding and
augmentation move like a label (resampled nearest-neighbour, so each channel keeps its
values), laid out by :class:`TargetLayout`::

    channel 0                hard train id, or IGNORE_INDEX
    channels 1 .. k          soft-label class ids (best first), IGNORE_INDEX = none
    channels k+1 .. 2k       their probabilities
    channel 2k+1 (partial)   row of the partial-label table, or NO_SET (-1)

The losses over these targets: :mod:`labelbridge.engine.target_losses`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy.partial import NO_SET


@dataclass(frozen=True)
class TargetLayout:
    """The channels of a stage's target stack.

    Attributes:
        soft_k: soft-label classes per pixel (0: none).
        partial: a partial-label channel.
    """

    soft_k: int = 0
    partial: bool = False

    @property
    def stacked(self) -> bool:
        """Whether targets are stacks (else plain ``(H, W)`` train ids)."""
        return self.soft_k > 0 or self.partial

    @property
    def channels(self) -> int:
        return 1 + 2 * self.soft_k + int(self.partial)

    @property
    def pad_values(self) -> tuple[float, ...]:
        """Fill of each channel where a crop or a batch pads: nothing to learn."""
        soft = (float(IGNORE_INDEX),) * self.soft_k + (0.0,) * self.soft_k
        return (float(IGNORE_INDEX), *soft) + ((float(NO_SET),) if self.partial else ())

    def pack(
        self,
        labels: np.ndarray,
        *,
        soft_ids: np.ndarray | None = None,
        soft_probs: np.ndarray | None = None,
        sets: np.ndarray | None = None,
    ) -> np.ndarray:
        """One sample's ``(C, H, W)`` float32 stack.

        Args:
            labels: ``(H, W)`` hard train ids or ``IGNORE_INDEX``.
            soft_ids: ``(k', H, W)`` class ids (``k' <= soft_k``; missing channels are
                "none"), with ``soft_probs`` of the same shape.
            sets: ``(H, W)`` partial-label rows or :data:`NO_SET`.
        """
        h, w = labels.shape
        stack = np.empty((self.channels, h, w), dtype=np.float32)
        stack[:] = np.asarray(self.pad_values, dtype=np.float32)[:, None, None]
        stack[0] = labels
        if soft_ids is not None and soft_probs is not None:
            k = min(self.soft_k, soft_ids.shape[0])
            stack[1 : 1 + k] = soft_ids[:k]
            stack[1 + self.soft_k : 1 + self.soft_k + k] = soft_probs[:k]
        if sets is not None and self.partial:
            stack[-1] = sets
        return stack

    def unpack(self, stack: torch.Tensor) -> Targets:
        """``(B, C, H, W)`` stacks -> :class:`Targets` on the same device."""
        if stack.ndim != 4 or stack.shape[1] != self.channels:
            raise ValueError(
                f"expected (B, {self.channels}, H, W) target stacks, got {tuple(stack.shape)}"
            )
        k = self.soft_k
        return Targets(
            labels=stack[:, 0].round().long(),
            soft_ids=stack[:, 1 : 1 + k].round().long() if k else None,
            soft_probs=stack[:, 1 + k : 1 + 2 * k] if k else None,
            sets=stack[:, -1].round().long() if self.partial else None,
        )


@dataclass
class Targets:
    """A batch's targets (see the module doc).

    Attributes:
        labels: ``(B, H, W)`` int64 hard train ids or ``IGNORE_INDEX``.
        soft_ids: ``(B, k, H, W)`` int64 class ids or ``IGNORE_INDEX``, or ``None``.
        soft_probs: ``(B, k, H, W)`` float probabilities, or ``None``.
        sets: ``(B, H, W)`` int64 partial-label rows or ``NO_SET``, or ``None``.
    """

    labels: torch.Tensor
    soft_ids: torch.Tensor | None = None
    soft_probs: torch.Tensor | None = None
    sets: torch.Tensor | None = None
