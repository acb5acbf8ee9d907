"""Registry of dataset readers: a plain dict from name to reader class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelbridge.data.base import SegmentationDataset
from labelbridge.errors import UserError

DATASETS: dict[str, type[SegmentationDataset]] = {}


def register_dataset(cls: type[SegmentationDataset]) -> type[SegmentationDataset]:
    """Class decorator adding a reader to :data:`DATASETS` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    DATASETS[cls.name] = cls
    return cls


def create_dataset(name: str, root: str | Path | None, split: str, **kwargs: Any) -> SegmentationDataset:
    """Build a reader by registry name.

    Raises:
        UserError: unknown name; the message lists the valid ones.
    """
    try:
        cls = DATASETS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}") from None
    return cls(root, split, **kwargs)
