"""Colour lookup tables from a taxonomy's palette: train ids or raw ids -> RGB pictures."""

from __future__ import annotations

import numpy as np

from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy import Taxonomy

RGB = tuple[int, int, int]

#: Colour of ignored pixels unless another is asked for.
DEFAULT_IGNORE_COLOR: RGB = (0, 0, 0)


def train_palette(taxonomy: Taxonomy, *, ignore_color: RGB = DEFAULT_IGNORE_COLOR) -> np.ndarray:
    """``(256, 3)`` uint8 lookup: train id -> RGB; ``IGNORE_INDEX`` and unused entries
    get ``ignore_color``."""
    table = np.empty((IGNORE_INDEX + 1, 3), dtype=np.uint8)
    table[:] = ignore_color
    table[: taxonomy.num_classes] = taxonomy.train_colors
    return table


def raw_palette(taxonomy: Taxonomy) -> np.ndarray:
    """``(N, 3)`` uint8 lookup: raw id -> RGB (the taxonomy's own colours, ignored
    classes included); ``N`` = size of the taxonomy's raw-id space (>= 256)."""
    table = np.zeros((len(taxonomy.lut), 3), dtype=np.uint8)
    for cls in taxonomy.classes:
        table[cls.id] = cls.color
    return table


def colorize(
    train_ids: np.ndarray,
    taxonomy: Taxonomy,
    *,
    ignore_color: RGB = DEFAULT_IGNORE_COLOR,
) -> np.ndarray:
    """Paint a train-id map with the taxonomy's colours.

    Args:
        train_ids: ``(H, W)`` integer train ids ``0..K-1`` or ``IGNORE_INDEX``.
        taxonomy: the taxonomy whose train ids these are.
        ignore_color: RGB of ``IGNORE_INDEX`` pixels.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: values outside ``0..K-1`` other than ``IGNORE_INDEX``.
    """
    ids = np.asarray(train_ids)
    _check_ids(ids, taxonomy.num_classes, taxonomy.name)
    return train_palette(taxonomy, ignore_color=ignore_color)[ids.astype(np.int64)]


def colorize_raw(raw_ids: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Paint a raw-id label map (as stored in the dataset's files) with its colours.

    Args:
        raw_ids: ``(H, W)`` integer raw ids of ``taxonomy``.
        taxonomy: the dataset's taxonomy.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: ids that are not in the taxonomy (listed).
    """
    raw = np.asarray(raw_ids)
    bad = taxonomy.unknown_ids(raw)
    if bad:
        raise ValueError(f"label ids {bad[:10]} are not in taxonomy {taxonomy.name!r}")
    return raw_palette(taxonomy)[raw.astype(np.int64)]


def _check_ids(ids: np.ndarray, num_classes: int, name: str) -> None:
    if np.issubdtype(ids.dtype, np.floating):
        raise ValueError(f"train ids must be integers, got dtype {ids.dtype}")
    outside = (ids < 0) | ((ids >= num_classes) & (ids != IGNORE_INDEX))
    if outside.any():
        values = np.unique(ids[outside])[:10].tolist()
        raise ValueError(
            f"values {values} are not train ids of taxonomy {name!r} (0..{num_classes - 1} or {IGNORE_INDEX})"
        )
