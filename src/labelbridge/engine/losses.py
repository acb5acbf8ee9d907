"""Loss bookkeeping for the training step.

Models compute their own losses (:meth:`SegmentationModel.compute_loss
<labelbridge.models.SegmentationModel.compute_loss>`: pixel-wise cross-entropy with
``IGNORE_INDEX`` ignored by default, Mask2Former's set loss where it applies). The engine
only takes the total, names the parts for logging, and stops on a non-finite loss
instead of silently training on NaNs.
"""

from __future__ import annotations

import torch


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def total_loss(
    parts: dict[str, torch.Tensor], *, step: int | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """The ``"loss"`` entry of a model's loss dict and all entries as floats for logging.

    Args:
        parts: ``{"loss": scalar tensor, <name>: scalar tensor, ...}``; ``"loss"`` is the
            total to optimise, the others are its named parts.
        step: global step, for the error message.

    Returns:
        The total (a scalar tensor with grad) and ``{name: value}``.

    Raises:
        KeyError: no ``"loss"`` entry.
        NonFiniteLossError: the total is NaN or infinite.
    """
    if "loss" not in parts:
        raise KeyError(f"compute_loss must return a dict with 'loss', got keys {sorted(parts)}")
    total = parts["loss"]
    values = {name: float(value.detach()) for name, value in parts.items()}
    if not torch.isfinite(total.detach()).all():
        at = f" at step {step}" if step is not None else ""
        raise NonFiniteLossError(
            f"training loss is not finite{at}: {values}; lower the learning rate or enable grad_clip"
        )
    return total, values
