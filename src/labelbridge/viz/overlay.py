"""Blend a colour-coded label map over its image."""

from __future__ import annotations

import numpy as np

from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy import Taxonomy
from labelbridge.viz.palette import colorize


def blend(
    image: np.ndarray, colors: np.ndarray, *, alpha: float = 0.5, mask: np.ndarray | None = None
) -> np.ndarray:
    """``(1 - alpha) * image + alpha * colors`` where ``mask`` is True; the image elsewhere.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        colors: ``(H, W, 3)`` uint8 RGB of the same size.
        alpha: weight of ``colors`` in ``[0, 1]``.
        mask: ``(H, W)`` bool, pixels to blend (default: all).

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        ValueError: sizes differ or ``alpha`` outside ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    image = np.asarray(image)
    colors = np.asarray(colors)
    if image.shape != colors.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} and colours {colors.shape} must both be (H, W, 3)")
    mixed = image.astype(np.float32) * (1.0 - alpha) + colors.astype(np.float32) * alpha
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    if mask is not None:
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
        out = np.where(mask[..., None], out, image.astype(np.uint8))
    return out


def overlay_labels(
    image: np.ndarray,
    train_ids: np.ndarray,
    taxonomy: Taxonomy,
    *,
    alpha: float = 0.5,
) -> np.ndarray:
    """Colour a train-id map with the taxonomy's palette and blend it over the image;
    ignored pixels (``IGNORE_INDEX``) show the image unchanged.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        train_ids: ``(H, W)`` integer train ids of ``taxonomy`` or ``IGNORE_INDEX``.
        taxonomy: the label map's taxonomy.
        alpha: opacity of the label colours in ``[0, 1]``.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    ids = np.asarray(train_ids)
    if ids.shape != np.asarray(image).shape[:2]:
        raise ValueError(
            f"label map {ids.shape} does not match image {np.asarray(image).shape[:2]}"
        )
    return blend(image, colorize(ids, taxonomy), alpha=alpha, mask=ids != IGNORE_INDEX)
