"""Optimisers (AdamW / SGD, optional separate encoder learning rate) and per-step
learning-rate schedules (linear warm-up, then poly / cosine / multistep / constant)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from labelbridge.errors import ConfigError

#: Parameter-name prefixes of encoders (backbones) in the model zoo, used when a model
#: does not declare its own ``encoder_prefixes`` attribute: ESPNetv2/DiCENet
#: (``base_net.``), Hugging Face SegFormer / UperNet / Mask2Former backbones, and the
#: generic ``encoder.`` / ``backbone.`` names.
DEFAULT_ENCODER_PREFIXES: tuple[str, ...] = (
    "base_net.",
    "encoder.",
    "backbone.",
    "hf.segformer.encoder.",
    "hf.backbone.",
    "hf.model.pixel_level_module.encoder.",
    "segformer.encoder.",
    "model.pixel_level_module.encoder.",
)

#: Warm-up starts at this fraction of the base learning rate.
WARMUP_START_FACTOR: float = 0.01


def encoder_prefixes(model: nn.Module) -> tuple[str, ...]:
    """The model's ``encoder_prefixes`` attribute, else :data:`DEFAULT_ENCODER_PREFIXES`."""
    own = getattr(model, "encoder_prefixes", None)
    return tuple(own) if own else DEFAULT_ENCODER_PREFIXES


def build_optimizer(
    model: nn.Module,
    *,
    name: str = "adamw",
    lr: float,
    encoder_lr: float | None = None,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """An optimiser over the trainable parameters of ``model``.

    Args:
        model: the network.
        name: ``adamw`` or ``sgd``.
        lr: learning rate of all parameters, or of the non-encoder ones when
            ``encoder_lr`` is given.
        encoder_lr: learning rate of parameters whose name starts with one of
            :func:`encoder_prefixes` (first param group ``"encoder"``, second ``"decoder"``).
        weight_decay: weight decay of every group.
        momentum: SGD momentum.

    Raises:
        ConfigError: unknown name, or ``encoder_lr`` when no parameter is an encoder's.
    """
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if encoder_lr is None:
        groups = [{"params": [p for _, p in params], "lr": lr, "name": "all"}]
    else:
        prefixes = encoder_prefixes(model)
        enc = [p for n, p in params if n.startswith(prefixes)]
        dec = [p for n, p in params if not n.startswith(prefixes)]
        if not enc:
            raise ConfigError(
                f"optimizer.encoder_lr is set but no parameter of {type(model).__name__} starts with "
                f"an encoder prefix {list(prefixes)}; remove encoder_lr"
            )
        groups = [{"params": enc, "lr": encoder_lr, "name": "encoder"}]
        if dec:
            groups.append({"params": dec, "lr": lr, "name": "decoder"})
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; valid: adamw, sgd")


def lr_factor(
    step: int,
    *,
    name: str,
    total_steps: int,
    steps_per_epoch: int,
    warmup_steps: int = 0,
    power: float = 0.9,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Warm-up rises linearly from :data:`WARMUP_START_FACTOR` to 1 over ``warmup_steps``;
    then ``t = (step - warmup) / (total - warmup)`` in ``[0, 1]`` drives ``poly``
    (``(1 - t)^power``) or ``cosine`` (``(1 + cos(pi t)) / 2``); ``multistep`` multiplies
    by ``gamma`` for every milestone epoch reached; ``constant`` is 1.
    """
    if step < warmup_steps:
        return WARMUP_START_FACTOR + (1.0 - WARMUP_START_FACTOR) * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    if name == "poly":
        return (1.0 - t) ** power
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if name == "multistep":
        epoch = step // max(1, steps_per_epoch)
        return gamma ** sum(epoch >= m for m in milestones)
    if name == "constant":
        return 1.0
    raise ConfigError(f"unknown schedule {name!r}; valid: poly, cosine, multistep, constant")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    name: str = "poly",
    total_steps: int,
    steps_per_epoch: int,
    warmup_steps: int = 0,
    warmup_epochs: int = 0,
    power: float = 0.9,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following :func:`lr_factor`; warm-up lasts
    ``warmup_steps + warmup_epochs * steps_per_epoch`` steps."""
    warmup = warmup_steps + warmup_epochs * steps_per_epoch
    lr_factor(
        0, name=name, total_steps=total_steps, steps_per_epoch=steps_per_epoch
    )  # validates name
    milestones = tuple(milestones)

    def factor(step: int) -> float:
        return lr_factor(
            step,
            name=name,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            warmup_steps=warmup,
            power=power,
            milestones=milestones,
            gamma=gamma,
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
