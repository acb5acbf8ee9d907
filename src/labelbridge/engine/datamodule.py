"""Training data of a stage: the torch datasets of the config's entries and the
Lightning data module (weighted training batches over several datasets, one sharded
loader per validation set)."""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from labelbridge.config.run import StageConfig
from labelbridge.config.train import TrainDatasetConfig
from labelbridge.data import create_dataset
from labelbridge.data.sampling import ShardSampler, WeightedDatasetSampler
from labelbridge.data.target_stack import TargetLayout
from labelbridge.data.torch_dataset import SegmentationTorchDataset, pad_collate
from labelbridge.engine.module import val_set_spec
from labelbridge.engine.stage_targets import StageTargets
from labelbridge.errors import ConfigError
from labelbridge.taxonomy import Taxonomy, load_ontology

log = logging.getLogger(__name__)


def build_train_sets(
    entries: list[TrainDatasetConfig],
    *,
    taxonomy: Taxonomy,
    resize: tuple[int, int] | None,
    targets: StageTargets | None = None,
) -> list[SegmentationTorchDataset]:
    """One torch dataset per training entry, targets in ``taxonomy``'s train ids (target
    stacks of ``targets``' layout where the stage learns from soft or partial labels).

    Raises:
        ConfigError / DatasetError: a reader, label source or taxonomy problem.
    """
    targets = targets or StageTargets()
    partial_sources = iter(targets.sources(taxonomy))
    sets = []
    for entry in entries:
        reader = create_dataset(entry.reader, entry.root, entry.split, on_error=entry.on_error)
        labels = entry.pseudo_dir if entry.pseudo_dir is not None else "gt"
        sets.append(
            SegmentationTorchDataset(
                reader,
                taxonomy=taxonomy,
                labels=None if entry.partial and entry.pseudo_dir is None else labels,
                resize=resize,
                limit=entry.limit,
                soft=entry.soft,
                partial=next(partial_sources) if entry.partial else None,
                layout=targets.layout,
            )
        )
    return sets


def build_val_sets(
    cfg: StageConfig, *, taxonomy: Taxonomy
) -> tuple[list[SegmentationTorchDataset], list[dict[str, Any]]]:
    """Validation datasets (targets in each set's own taxonomy) and their
    :func:`~labelbridge.engine.module.val_set_spec` descriptions.

    Raises:
        ConfigError: a set without ontology in another taxonomy, or an ontology whose
            extra taxonomy is not the set's.
    """
    datasets, specs = [], []
    select = cfg.select_index
    for i, entry in enumerate(cfg.val):
        reader = create_dataset(entry.reader, entry.root, entry.split, on_error=entry.on_error)
        target_taxonomy = taxonomy
        if entry.ontology is not None:
            onto = load_ontology(entry.ontology)
            if not onto.extra.same_train_space(reader.taxonomy):
                raise ConfigError(
                    f"{onto.origin}: val set {entry.report_name!r} is in taxonomy {reader.taxonomy.name!r}, "
                    f"but the mapping's extra taxonomy is {onto.extra.name!r}"
                )
            target_taxonomy = reader.taxonomy
        datasets.append(
            SegmentationTorchDataset(
                reader, taxonomy=target_taxonomy, labels="gt", resize=cfg.resize, limit=entry.limit
            )
        )
        specs.append(
            val_set_spec(
                label=entry.report_name,
                taxonomy=target_taxonomy,
                ontology=entry.ontology,
                select=i == select,
            )
        )
    return datasets, specs


def usable_workers(requested: int) -> int:
    """``requested`` loader processes, at most the CPUs this process may use (logged when
    fewer: more workers than CPUs only contend, and torch warns about it)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if requested > cpus:
        log.info("num_workers %d > %d usable CPUs: loading with %d", requested, cpus, cpus)
        return cpus
    return requested


class SegmentationDataModule(L.LightningDataModule):
    """Weighted training batches over several datasets and one loader per val set.

    Args:
        train_sets: training datasets (may be empty for validation-only use).
        weights: sampling weight of each training dataset.
        val_sets: validation datasets, in the module's ``val_sets`` order.
        batch_size: training batch size per process.
        val_batch_size: validation batch size per process.
        num_workers: loader processes per training process (at most the usable CPUs).
        steps_per_epoch: batches per epoch and process (``None``: summed dataset sizes
            divided by the global batch size).
        seed: sampler seed.
        train_layout: the training sets' target stack (``None``: plain train ids).
    """

    def __init__(
        self,
        *,
        train_sets: list[Dataset],
        weights: list[float],
        val_sets: list[Dataset],
        batch_size: int,
        val_batch_size: int,
        num_workers: int = 0,
        steps_per_epoch: int | None = None,
        seed: int = 0,
        train_layout: TargetLayout | None = None,
    ) -> None:
        super().__init__()
        self.train_sets, self.weights, self.val_sets = train_sets, weights, val_sets
        self.train_layout = train_layout if train_layout and train_layout.stacked else None
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers = usable_workers(num_workers)
        self.steps_per_epoch, self.seed = steps_per_epoch, seed

    def _rank_world(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _epoch_to_run(self) -> int:
        """The epoch the trainer starts next (0 when not attached or fresh; ``k`` when a
        stage resumes after ``k`` finished epochs)."""
        if self.trainer is None:
            return 0
        return int(self.trainer.fit_loop.epoch_progress.current.processed)

    def _loader_kwargs(self, layout: TargetLayout | None = None) -> dict[str, Any]:
        collate = (
            pad_collate if layout is None else partial(pad_collate, pad_values=layout.pad_values)
        )
        return {
            "num_workers": self.num_workers,
            "collate_fn": collate,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": torch.cuda.is_available(),
            # worker seeds come from the loader's own generator, not the global one, so
            # creating a loader's iterator (every epoch, or once with persistent workers)
            # does not shift the augmentation's random stream; see RandomStateCallback
            "generator": torch.Generator().manual_seed(self.seed),
        }

    def train_steps_per_epoch(self) -> int:
        """Optimiser steps per epoch: ``steps_per_epoch``, else the summed dataset sizes
        divided by the global batch size (at least 1)."""
        _, world = self._rank_world()
        sizes = [len(d) for d in self.train_sets]
        return self.steps_per_epoch or max(1, sum(sizes) // (self.batch_size * world))

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sizes = [len(d) for d in self.train_sets]
        steps = self.train_steps_per_epoch()
        sampler = WeightedDatasetSampler(
            sizes,
            self.weights,
            num_samples=steps * self.batch_size * world,
            seed=self.seed,
            rank=rank,
            world_size=world,
        )
        # Lightning creates the loader's iterator before it calls ``set_epoch``, and
        # worker processes fetch their first batches right then: a stage resumed at
        # epoch k would draw epoch 0's samples for its first epoch
        sampler.set_epoch(self._epoch_to_run())
        return DataLoader(
            ConcatDataset(self.train_sets),
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            **self._loader_kwargs(self.train_layout),
        )

    def val_dataloader(self) -> list[DataLoader]:
        rank, world = self._rank_world()
        return [
            DataLoader(
                ds,
                batch_size=self.val_batch_size,
                sampler=ShardSampler(len(ds), rank=rank, world_size=world),
                **self._loader_kwargs(),
            )
            for ds in self.val_sets
        ]
