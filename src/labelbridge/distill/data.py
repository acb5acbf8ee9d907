"""Distillation data: target datasets (images with their own ground truth, if any,
encoded for the teacher's ontology-constrained labels) and the data module that yields a
source and a target batch per step."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from labelbridge.config.distill import TargetDatasetConfig
from labelbridge.data import create_dataset
from labelbridge.data.base import SegmentationDataset
from labelbridge.data.sampling import WeightedDatasetSampler
from labelbridge.data.torch_dataset import load_or_skip, pad_collate, resize_pair
from labelbridge.distill.functional import TARGET_LABEL_OFFSET
from labelbridge.engine.train import SegmentationDataModule
from labelbridge.errors import ConfigError, DatasetError
from labelbridge.taxonomy import Ontology, Taxonomy, load_ontology

log = logging.getLogger(__name__)


class TargetTorchDataset(Dataset):
    """Target images with their own ground truth (if any), encoded for the teacher's
    ontology-constrained labels.

    Args:
        reader: the dataset reader.
        domain: index of this dataset's ontology in the module's ``target_ontologies``.
        use_labels: read the reader's labels (the dataset has an ontology); otherwise
            every pixel is encoded as "valid, no ground truth".
        resize: ``(W, H)`` or ``None``.
        limit: only the first ``limit`` samples.

    Items are ``(image, labels, domain)``: ``(3, H, W)`` uint8 RGB, ``(H, W)`` int64
    ``raw id + TARGET_LABEL_OFFSET`` (so that padding, ``IGNORE_INDEX``, stays apart),
    and the int domain.
    """

    def __init__(
        self,
        reader: SegmentationDataset,
        *,
        domain: int,
        use_labels: bool,
        resize: tuple[int, int] | None = None,
        limit: int | None = None,
    ) -> None:
        self.reader = reader
        self.domain = int(domain)
        self.use_labels = use_labels
        self.resize = tuple(resize) if resize is not None else None
        self.indices = list(range(len(reader)))[:limit]

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.reader.load(self.indices[position])
        if self.use_labels:
            if sample.label is None:
                raise DatasetError(
                    f"{sample.image_path}: split {self.reader.split!r} has no labels for the ontology"
                )
            labels = sample.label.astype("int32") + TARGET_LABEL_OFFSET
        else:
            labels = torch.full(
                sample.image.shape[:2], TARGET_LABEL_OFFSET, dtype=torch.int32
            ).numpy()
        image, labels = resize_pair(sample.image, labels, self.resize)
        return (
            torch.from_numpy(image.copy()).permute(2, 0, 1).contiguous(),
            torch.from_numpy(labels.astype("int64")),
        )

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, labels = load_or_skip(self.reader, self.indices, position, self._load)
        return image, labels, self.domain


def target_collate(
    batch: list[tuple[torch.Tensor, torch.Tensor, int]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack target items, padding like :func:`pad_collate` (labels with ``IGNORE_INDEX``,
    i.e. "not image content"). Returns ``(B, 3, H, W)`` uint8, ``(B, H, W)`` int64 and
    ``(B,)`` int64 domains."""
    images, labels = pad_collate([(img, lab) for img, lab, _ in batch])
    return images, labels, torch.tensor([d for _, _, d in batch], dtype=torch.int64)


def build_target_sets(
    entries: list[TargetDatasetConfig], *, taxonomy: Taxonomy, resize: tuple[int, int] | None
) -> tuple[list[TargetTorchDataset], list[str | None]]:
    """One dataset per target entry and the ontology (name/file or ``None``) of each.

    Raises:
        ConfigError: an ontology whose source side is not ``taxonomy`` or whose extra
            side is not the dataset's taxonomy.
    """
    sets, ontologies = [], []
    for domain, entry in enumerate(entries):
        reader = create_dataset(entry.reader, entry.root, entry.split, on_error=entry.on_error)
        if entry.ontology is not None:
            onto = load_ontology(entry.ontology)
            check_target_ontology(onto, taxonomy=taxonomy, what=f"target dataset {entry.reader!r}")
            if not onto.extra.same_label_space(reader.taxonomy):
                raise ConfigError(
                    f"{onto.origin}: target dataset {entry.reader!r} is in taxonomy {reader.taxonomy.name!r}, "
                    f"but the mapping's extra taxonomy is {onto.extra.name!r}"
                )
        sets.append(
            TargetTorchDataset(
                reader,
                domain=domain,
                use_labels=entry.ontology is not None,
                resize=resize,
                limit=entry.limit,
            )
        )
        ontologies.append(entry.ontology)
    return sets, ontologies


def check_target_ontology(onto: Ontology, *, taxonomy: Taxonomy, what: str) -> None:
    """Check that ``onto`` maps into the distillation taxonomy.

    Raises:
        ConfigError: its source side is another label space.
    """
    if not onto.source.same_train_space(taxonomy):
        raise ConfigError(
            f"{onto.origin}: the mapping's source taxonomy {onto.source.name!r} is not the distillation "
            f"taxonomy {taxonomy.name!r} ({what})"
        )


class DistillDataModule(SegmentationDataModule):
    """Training batches ``{"source": (images, targets), "target": (images, labels,
    domains)}`` (the target loader is left out when there are no target datasets) and one
    loader per validation set.

    Args:
        target_sets: target datasets (may be empty).
        target_weights: sampling weight of each target dataset.
        target_batch_size: target images per batch and process.
        **kwargs: see :class:`~labelbridge.engine.train.SegmentationDataModule`.

    Both training loaders yield the same number of batches per epoch; the target
    sampler is seeded differently from the source sampler.
    """

    def __init__(
        self,
        *,
        target_sets: list[TargetTorchDataset],
        target_weights: list[float],
        target_batch_size: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_sets, self.target_weights = target_sets, target_weights
        self.target_batch_size = target_batch_size

    def train_dataloader(self) -> dict[str, DataLoader]:  # type: ignore[override]
        source = super().train_dataloader()
        if not self.target_sets:
            return {"source": source}
        rank, world = self._rank_world()
        steps = len(source)
        sampler = WeightedDatasetSampler(
            [len(d) for d in self.target_sets],
            self.target_weights,
            num_samples=steps * self.target_batch_size * world,
            seed=self.seed + 7919,
            rank=rank,
            world_size=world,
        )
        kwargs = {**self._loader_kwargs(), "collate_fn": target_collate}
        target = DataLoader(
            ConcatDataset(self.target_sets),
            batch_size=self.target_batch_size,
            sampler=sampler,
            drop_last=True,
            **kwargs,
        )
        return {"source": source, "target": target}
