"""Inference helpers: logits at the native size, and class probabilities with or without
test-time augmentation (:class:`~labelbridge.models.tta.TTAPredictor`, the pseudo-labeller's)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.models.base import SegmentationModel
from labelbridge.models.tta import TTAPredictor

#: Largest value of a uint8 image channel.
UINT8_MAX: float = 255.0


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 in ``[0, 1]``.

    Raises:
        ValueError: not an ``(H, W, 3)`` uint8 array.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    return (
        torch.from_numpy(np.require(image, requirements=["C", "W"]))
        .permute(2, 0, 1)
        .unsqueeze(0)
        .float()
        / UINT8_MAX
    )


def _at_input_size(
    run: Callable[[torch.Tensor], torch.Tensor],
    model: nn.Module,
    images: torch.Tensor,
    input_size: tuple[int, int] | None,
) -> torch.Tensor:
    """``run`` on ``images`` (moved to ``model``'s device) resized to ``input_size``
    ``(W, H)`` (bilinear), its ``(B, C, h, w)`` result resized back to the native size."""
    param = next(model.parameters(), None)
    if param is not None:
        images = images.to(param.device)
    h, w = images.shape[-2:]
    if input_size is None or tuple(input_size) == (w, h):
        return run(images)
    width, height = input_size
    resized = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    return F.interpolate(run(resized), size=(h, w), mode="bilinear", align_corners=False)


@torch.no_grad()
def predict_logits(
    model: SegmentationModel,
    images: torch.Tensor,
    *,
    input_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Logits at the images' native size, computed without gradients.

    Args:
        model: a zoo model (its train/eval mode is left as it is; call ``.eval()``).
        images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``; moved to the model's device.
        input_size: ``(W, H)`` to resize the images to (bilinear) before the model; the
            logits are resized back to ``(H, W)``. ``None``: run at the native size.

    Returns:
        ``(B, C, H, W)`` float logits on the model's device.
    """
    return _at_input_size(model, model, images, input_size)


@torch.no_grad()
def predict_probabilities(
    model: SegmentationModel,
    images: torch.Tensor,
    *,
    input_size: tuple[int, int] | None = None,
    tta: TTAPredictor | None = None,
) -> torch.Tensor:
    """Class probabilities at the images' native size.

    Args:
        model: a zoo model in eval mode (``tta.model`` when ``tta`` is given).
        images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``; moved to the model's device.
        input_size: ``(W, H)`` the images are resized to (bilinear) first; ``None``: native.
        tta: average over its scales and flip (relative to ``input_size``); ``None``: one
            plain pass (the softmax of :func:`predict_logits`).

    Returns:
        ``(B, C, H, W)`` float32 probabilities summing to 1 over ``C``.
    """
    if tta is None:
        return torch.softmax(predict_logits(model, images, input_size=input_size).float(), dim=1)
    return _at_input_size(tta.predict, tta.model, images, input_size)
