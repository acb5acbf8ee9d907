"""Registry of dataset readers: a plain dict from name to reader class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelbridge.data.base import DatasetInfo, SegmentationDataset
from labelbridge.errors import UserError

DATASETS: dict[str, type[SegmentationDataset]] = {}


def register_dataset(cls: type[SegmentationDataset]) -> type[SegmentationDataset]:
    """Class decorator adding a reader to :data:`DATASETS` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    DATASETS[cls.name] = cls
    return cls


def dataset_class(name: str) -> type[SegmentationDataset]:
    """The reader class registered as ``name``.

    Raises:
        UserError: unknown name; the message lists the valid ones.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(
            f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}"
        ) from None


def create_dataset(
    name: str, root: str | Path | None, split: str, **kwargs: Any
) -> SegmentationDataset:
    """Build a reader by registry name.

    Raises:
        UserError: unknown name; the message lists the valid ones.
    """
    return dataset_class(name)(root, split, **kwargs)


def list_datasets() -> list[DatasetInfo]:
    """One :class:`DatasetInfo` per registered reader, sorted by name."""
    from labelbridge.data.prepare import PREPARERS

    def prepare(name: str) -> str:
        if name not in PREPARERS:
            return ""
        return "required" if PREPARERS[name].required else "optional"

    return [
        DatasetInfo(
            name=cls.name,
            taxonomy=cls.taxonomy_name or "<root>/taxonomy.yaml",
            splits=tuple(cls.splits),
            unlabelled_splits=tuple(cls.unlabelled_splits),
            layout=cls.layout,
            prepare=prepare(cls.name),
        )
        for _, cls in sorted(DATASETS.items())
    ]
