"""Training entry points: :func:`run_training` (teacher or student, with the source
fine-tune stage) and :func:`validate_checkpoint`.

A run folder holds::

    <out>/config.yaml                 the resolved config (a re-run with other settings
                                      than it records is refused, see claim_run_folder)
    <out>/train/checkpoints/          stage 1: best-*.ckpt (selection mIoU) and last.ckpt
    <out>/train/logs/{tensorboard,csv}/
    <out>/train/stage_done.json       written atomically when stage 1 has finished
    <out>/finetune/...                stage 2, the same layout
    <out>/final.ckpt                  the final model (best of the last stage)
    <out>/metrics.json                validation metrics of the final model, skipped samples
    <out>/skipped.jsonl               samples skipped under ``on_error: skip`` (one JSON line each)

Stage 1 trains on all ``datasets`` with weighted sampling, keeps the checkpoint with the
best selection mIoU (``val/select/mIoU``) and stops early when it has not improved for
``early_stopping.patience`` validations. Stage 2 (``finetune.enabled``) starts from that
checkpoint and trains on the source datasets alone (see
:attr:`TrainConfig.source_datasets <labelbridge.config.train.TrainConfig.source_datasets>`)
with every learning rate times ``finetune.lr_factor``, the same schedule without warm-up,
and its own early stopping. Re-running with the same output folder skips finished stages
and resumes an unfinished one from its ``last.ckpt`` (global step, epoch, optimiser and
sampler position continue).

``trainer.devices``, ``trainer.strategy`` and ``trainer.num_nodes`` go straight to
``lightning.Trainer``: the weighted sampler and the validation shards read the rank and
world size from the trainer, and confusion matrices are summed across processes, so
multi-GPU and multi-node DDP need no code changes. Every process reads the stage
checkpoints, so for several nodes the output folder must be on a shared file system.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from pydantic import BaseModel
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from labelbridge.config import dump_config
from labelbridge.config.base import config_changes
from labelbridge.config.train import TrainConfig, TrainDatasetConfig
from labelbridge.data import create_dataset
from labelbridge.data.sampling import ShardSampler, WeightedDatasetSampler
from labelbridge.data.torch_dataset import (
    SegmentationTorchDataset,
    append_skip_record,
    pad_collate,
    read_skip_records,
)
from labelbridge.engine.callbacks import (
    STAGE_MARKER,
    HistoryCallback,
    ProgressLines,
    RandomStateCallback,
    SummaryLine,
    read_stage_marker,
    write_stage_marker,
)
from labelbridge.engine.module import SELECT_METRIC, SegmentationModule, val_set_spec
from labelbridge.errors import CheckpointError, ConfigError
from labelbridge.files import copy_file_atomic, write_json_atomic
from labelbridge.progress import stderr_is_terminal
from labelbridge.taxonomy import Taxonomy, load_ontology, load_taxonomy

log = logging.getLogger(__name__)

# Validation metrics are computed from confusion matrices already summed across
# processes, so every rank logs the same value; Lightning's advice to sync them is moot.
warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('val/")

#: Stage folder names inside the run folder.
STAGE_TRAIN = "train"
STAGE_FINETUNE = "finetune"
FINAL_CHECKPOINT = "final.ckpt"
#: File stem of the latest checkpoint of a stage (resume point).
LAST_NAME = "last"
METRICS_FILE = "metrics.json"
#: JSON lines of training samples skipped under ``on_error: skip``.
SKIP_LOG = "skipped.jsonl"
#: The resolved config of a run folder.
RUN_CONFIG = "config.yaml"
#: Config keys that do not change what a run computes: a run folder may be resumed with
#: other values of these (the sanity check draws no random numbers, see
#: :class:`~labelbridge.engine.callbacks.RandomStateCallback`).
RESULT_NEUTRAL_KEYS = (
    "output",
    "num_workers",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.num_sanity_val_steps",
)


@dataclass
class TrainResult:
    """Outcome of :func:`run_training`.

    Attributes:
        best_checkpoint: best stage-1 checkpoint (by the selection mIoU).
        final_checkpoint: ``<out>/final.ckpt``, the best checkpoint of the last stage.
        metrics: ``{val label: {"mIoU", "pixel_accuracy", "mean_accuracy", "pixels",
            "per_class_iou": {class: IoU}}}`` of the final model (NaN as ``None``).
        history: one entry per validation of each stage (see :class:`HistoryCallback`).
        out_dir: the run folder.
    """

    best_checkpoint: Path
    final_checkpoint: Path
    metrics: dict[str, dict[str, Any]]
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path = Path(".")


# ---------------------------------------------------------------------- data
def build_train_sets(
    entries: list[TrainDatasetConfig], *, taxonomy: Taxonomy, resize: tuple[int, int] | None
) -> list[SegmentationTorchDataset]:
    """One torch dataset per training entry, targets in ``taxonomy``'s train ids.

    Raises:
        ConfigError / DatasetError: a reader, label source or taxonomy problem.
    """
    sets = []
    for entry in entries:
        reader = create_dataset(entry.name, entry.root, entry.split, on_error=entry.on_error)
        labels = entry.pseudo_dir if entry.pseudo_dir is not None else "gt"
        sets.append(
            SegmentationTorchDataset(
                reader, taxonomy=taxonomy, labels=labels, resize=resize, limit=entry.limit
            )
        )
    return sets


def build_val_sets(
    cfg: TrainConfig, *, taxonomy: Taxonomy
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
        reader = create_dataset(entry.name, entry.root, entry.split, on_error=entry.on_error)
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
    ) -> None:
        super().__init__()
        self.train_sets, self.weights, self.val_sets = train_sets, weights, val_sets
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

    def _loader_kwargs(self) -> dict[str, Any]:
        return {
            "num_workers": self.num_workers,
            "collate_fn": pad_collate,
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
            **self._loader_kwargs(),
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


# ---------------------------------------------------------------------- building blocks
def build_module(
    cfg: TrainConfig,
    *,
    taxonomy: Taxonomy,
    val_specs: list[dict[str, Any]],
    lr_factor: float = 1.0,
    warmup: bool = True,
    weights: str | None = None,
) -> SegmentationModule:
    """The LightningModule of a config; ``lr_factor`` scales ``lr`` and ``encoder_lr``;
    ``weights`` (normally ``cfg.model.weights`` for stage 1, else ``None``) initialise it."""
    opt = cfg.optimizer.model_dump()
    opt["lr"] = opt["lr"] * lr_factor
    if opt["encoder_lr"] is not None:
        opt["encoder_lr"] = opt["encoder_lr"] * lr_factor
    schedule = cfg.schedule.model_dump()
    if not warmup:
        schedule["warmup_steps"] = schedule["warmup_epochs"] = 0
    return SegmentationModule(
        model_spec=cfg.model.spec,
        taxonomy=taxonomy.to_dict(),
        optimizer=opt,
        schedule=schedule,
        augment=cfg.augment.module_kwargs(),
        val_sets=val_specs,
        weights=weights,
        reinit_classifier=cfg.model.reinit_classifier if weights is not None else False,
        classifier_from=cfg.model.classifier_from if weights is not None else None,
    )


def _trainer_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    t = cfg.trainer
    return {
        "accelerator": t.accelerator,
        "devices": t.devices,
        "strategy": t.strategy,
        "num_nodes": t.num_nodes,
        "precision": cfg.precision,
        "deterministic": t.deterministic,
        # the bar only where it can redraw; elsewhere ProgressLines logs (run_stage)
        "enable_progress_bar": t.enable_progress_bar and stderr_is_terminal(),
        # SummaryLine says the same in one line (run_stage)
        "enable_model_summary": False,
        "sync_batchnorm": t.sync_batchnorm,
        "use_distributed_sampler": False,  # the samplers shard by rank themselves
    }


def load_module_weights(module: SegmentationModule, path: Path) -> None:
    """Load the ``state_dict`` of a Lightning checkpoint into ``module`` (strictly).

    Raises:
        CheckpointError: unreadable file, no state dict, or keys/shapes that differ.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc}") from None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if state is None:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: does not match model {module.model_spec!r}: {exc}"
        ) from None


def _history_of(checkpoint: Path) -> list[dict[str, Any]]:
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    for key, state in ckpt.get("callbacks", {}).items():
        if "HistoryCallback" in str(key):
            return list(state.get("history", []))
    return []


def metrics_from_logged(
    logged: dict[str, Any], val_specs: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per-val-set summaries from the values the module logged (``trainer.callback_metrics``)."""

    def num(key: str) -> float | None:
        value = float(logged[key])
        return None if math.isnan(value) else value

    out = {}
    for spec in val_specs:
        p = f"val/{spec['label']}"
        out[spec["label"]] = {
            "mIoU": num(f"{p}/mIoU"),
            "pixel_accuracy": num(f"{p}/pixel_accuracy"),
            "mean_accuracy": num(f"{p}/mean_accuracy"),
            "pixels": int(float(logged[f"{p}/pixels"])),
            "per_class_iou": {name: num(f"{p}/IoU/{name}") for name in spec["class_names"]},
        }
    return out


# ---------------------------------------------------------------------- stages
def resume_or_run_stage(
    cfg: TrainConfig,
    *,
    stage: str,
    stage_dir: Path,
    seed: int,
    build: Callable[[], tuple[L.LightningModule, L.LightningDataModule]],
    max_epochs: int,
    patience: int,
    callbacks: list[L.Callback],
) -> tuple[Path, list[dict[str, Any]]]:
    """A finished stage's best checkpoint and history (read from its marker); otherwise
    seed everything with ``seed``, ``build()`` the module and data (only then) and
    :func:`run_stage` it."""
    marker = read_stage_marker(stage_dir)
    if marker is not None:
        best = Path(marker["best_checkpoint"])
        if not best.is_file():
            raise FileNotFoundError(
                f"{stage_dir / STAGE_MARKER}: the finished stage's best checkpoint {best} is "
                "missing; delete the marker to train the stage again"
            )
        log.info("stage %r already finished (%s); skipping it", stage, stage_dir)
        return best, list(marker.get("history", []))
    L.seed_everything(seed, workers=True)
    module, datamodule = build()
    return run_stage(
        cfg,
        stage=stage,
        stage_dir=stage_dir,
        module=module,
        datamodule=datamodule,
        max_epochs=max_epochs,
        patience=patience,
        callbacks=callbacks,
    )


def run_stage(
    cfg: TrainConfig,
    *,
    stage: str,
    stage_dir: Path,
    module: SegmentationModule,
    datamodule: SegmentationDataModule,
    max_epochs: int,
    patience: int,
    callbacks: list[L.Callback],
) -> tuple[Path, list[dict[str, Any]]]:
    """Fit one stage (resuming from its ``last.ckpt``), mark it done, return its best
    checkpoint and history."""
    ckpt_dir = stage_dir / "checkpoints"
    _remove_empty_files(stage_dir / "logs")
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-e{epoch:03d}-s{step:06d}",
        monitor=SELECT_METRIC,
        mode="max",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    # the latest state after every validation, for resuming (Lightning's save_last only
    # writes when a new best was saved)
    latest = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename=LAST_NAME,
        monitor=None,
        save_top_k=1,
        enable_version_counter=False,
    )
    cbs: list[L.Callback] = [
        HistoryCallback(stage),
        RandomStateCallback(),
        LearningRateMonitor(logging_interval="step"),
        checkpoint,
        latest,
    ]
    if cfg.trainer.enable_model_summary:
        cbs.append(SummaryLine(stage))
    if cfg.trainer.enable_progress_bar and not stderr_is_terminal():
        cbs.append(ProgressLines(stage, metric=SELECT_METRIC))
    if cfg.early_stopping.enabled:
        cbs.append(
            EarlyStopping(
                monitor=SELECT_METRIC,
                mode="max",
                patience=patience,
                min_delta=cfg.early_stopping.min_delta,
            )
        )
    loggers = [
        TensorBoardLogger(
            save_dir=stage_dir, name="logs", version="tensorboard", default_hp_metric=False
        ),
        CSVLogger(
            save_dir=stage_dir, name="logs", version=_fresh_version(stage_dir / "logs", "csv")
        ),
    ]
    trainer = L.Trainer(
        **_trainer_kwargs(cfg),
        max_epochs=max_epochs,
        gradient_clip_val=cfg.grad_clip,
        log_every_n_steps=_log_interval(cfg.trainer.log_every_n_steps, datamodule),
        num_sanity_val_steps=cfg.trainer.num_sanity_val_steps,
        default_root_dir=stage_dir,
        callbacks=cbs + list(callbacks),
        logger=loggers,
    )
    last = ckpt_dir / f"{LAST_NAME}.ckpt"
    resume = last if last.is_file() else None
    if resume is not None:
        log.info("%s: resuming from %s", stage, resume)
    else:
        _start_stage_over(stage, ckpt_dir, max_epochs)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    if trainer.interrupted:
        raise RuntimeError(
            f"stage {stage!r} was interrupted; run again with the same output folder to resume"
        )
    if not checkpoint.best_model_path:
        raise RuntimeError(f"stage {stage!r} saved no checkpoint (did validation run?)")
    best_path = Path(checkpoint.best_model_path)
    history = _history_of(last) if last.is_file() else []
    if trainer.is_global_zero:
        scores = [
            h[SELECT_METRIC]
            for h in history
            if SELECT_METRIC in h and not math.isnan(h[SELECT_METRIC])
        ]
        write_stage_marker(
            stage_dir,
            {
                # relative, so that a moved or renamed run folder still resumes
                "best_checkpoint": os.path.relpath(best_path.resolve(), stage_dir.resolve()),
                "best_score": max(scores) if scores else None,
                "history": history,
            },
        )
    return best_path, history


def _log_interval(every: int, datamodule: L.LightningDataModule) -> int:
    """``every``, or the epoch's step count where an epoch is shorter (so that short
    epochs still log their training loss, and Lightning does not warn about it)."""
    steps = getattr(datamodule, "train_steps_per_epoch", None)
    return max(1, min(every, steps())) if callable(steps) else every


def _start_stage_over(stage: str, ckpt_dir: Path, max_epochs: int) -> None:
    """Say that ``stage`` starts from its first epoch; remove the checkpoints an earlier
    try left without a ``last.ckpt`` (it stopped between saving its first best and its
    first latest state), so that the stage's best is one of this try's."""
    stale = sorted(ckpt_dir.glob("*.ckpt")) if ckpt_dir.is_dir() else []
    if stale:
        log.info(
            "%s: no %s.ckpt to resume from; removing %d checkpoint(s) of an earlier try "
            "that stopped in its first epoch (%s) and starting over",
            stage,
            LAST_NAME,
            len(stale),
            ", ".join(p.name for p in stale),
        )
        for path in stale:
            path.unlink()
    log.info("%s: training from epoch 1 of %d", stage, max_epochs)


def _fresh_version(folder: Path, stem: str) -> str:
    """``stem``, or ``stem_1``, ``stem_2``, ... whichever does not exist yet (a resumed
    stage writes its CSV log next to the earlier one instead of replacing it)."""
    name, n = stem, 0
    while (folder / name).exists():
        n += 1
        name = f"{stem}_{n}"
    return name


def claim_run_folder(cfg: BaseModel, out: Path) -> None:
    """Record ``cfg`` as ``out/config.yaml``, unless the folder already holds training
    (a stage checkpoint or marker) done with other settings.

    A re-run with the same settings resumes; with other settings it would skip finished
    stages, or resume one half-way, under a config that does not describe the model.

    Raises:
        ConfigError: the folder's recorded config differs in a key that changes the
            result (every key but :data:`RESULT_NEUTRAL_KEYS`); the message lists them.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_CONFIG
    if path.is_file() and _holds_stage_work(out):
        try:
            old = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"{path}: cannot read the config this run folder was trained with ({exc}); "
                "use another output folder"
            ) from None
        changes = config_changes(old, cfg.model_dump(mode="json"), ignore=RESULT_NEUTRAL_KEYS)
        if changes:
            raise ConfigError(
                f"{path}: this run folder holds training done with other settings; changed: "
                f"{'; '.join(changes)}. Undo the changes to resume it, or train into another "
                f"folder (--out DIR; to start from this run's model, set "
                f"model.weights={out / FINAL_CHECKPOINT})"
            )
    dump_config(cfg, path)


def _holds_stage_work(out: Path) -> bool:
    """Whether any stage of the run folder has a checkpoint or a done-marker."""
    return any(out.glob("*/checkpoints/*.ckpt")) or any(out.glob(f"*/{STAGE_MARKER}"))


def run_training(
    cfg: TrainConfig, *, out_dir: Path | None = None, callbacks: list[L.Callback] | None = None
) -> TrainResult:
    """Train (stage 1), fine-tune on the source data (stage 2), validate the final model.

    Args:
        cfg: the run's config.
        out_dir: run folder (default ``cfg.output``); an existing one is resumed.
        callbacks: extra Lightning callbacks added to every stage's trainer.

    Returns:
        The checkpoints, the final model's validation metrics and the history.

    Raises:
        ConfigError / DatasetError / CheckpointError: problems with the inputs, or a run
            folder trained with other settings (:func:`claim_run_folder`).
    """
    out = Path(out_dir) if out_dir is not None else cfg.output_dir
    claim_run_folder(cfg, out)
    taxonomy = load_taxonomy(cfg.taxonomy)
    val_sets, val_specs = build_val_sets(cfg, taxonomy=taxonomy)
    extra = list(callbacks or [])

    def datamodule(entries: list[TrainDatasetConfig]) -> SegmentationDataModule:
        train_sets = build_train_sets(entries, taxonomy=taxonomy, resize=cfg.resize)
        for ds in train_sets:
            ds.skip_log = out / SKIP_LOG
            for rec in ds.reader.skipped:  # found while listing, in this process
                append_skip_record(ds.skip_log, rec.path, rec.problem)
        return SegmentationDataModule(
            train_sets=train_sets,
            weights=[e.weight for e in entries],
            val_sets=val_sets,
            batch_size=cfg.batch_size,
            val_batch_size=cfg.val_batch_size,
            num_workers=cfg.num_workers,
            steps_per_epoch=cfg.steps_per_epoch,
            seed=cfg.seed,
        )

    # ---- stage 1
    def build_stage1() -> tuple[L.LightningModule, L.LightningDataModule]:
        module = build_module(
            cfg, taxonomy=taxonomy, val_specs=val_specs, weights=cfg.model.weights
        )
        return module, datamodule(cfg.datasets)

    best, history = resume_or_run_stage(
        cfg,
        stage=STAGE_TRAIN,
        stage_dir=out / STAGE_TRAIN,
        seed=cfg.seed,
        build=build_stage1,
        max_epochs=cfg.epochs,
        patience=cfg.early_stopping.patience,
        callbacks=extra,
    )
    final_source = best
    # ---- stage 2
    if cfg.finetune.enabled:

        def build_stage2() -> tuple[L.LightningModule, L.LightningDataModule]:
            module = build_module(
                cfg,
                taxonomy=taxonomy,
                val_specs=val_specs,
                lr_factor=cfg.finetune.lr_factor,
                warmup=False,
            )
            load_module_weights(module, best)
            return module, datamodule(cfg.source_datasets)

        final_source, stage_history = resume_or_run_stage(
            cfg,
            stage=STAGE_FINETUNE,
            stage_dir=out / STAGE_FINETUNE,
            seed=cfg.seed + 1,
            build=build_stage2,
            max_epochs=cfg.finetune.epochs or cfg.epochs,
            patience=cfg.finetune.patience or cfg.early_stopping.patience,
            callbacks=extra,
        )
        history += stage_history
    final = out / FINAL_CHECKPOINT
    if is_global_zero():
        copy_file_atomic(final_source, final)
    metrics = validate_checkpoint(
        cfg, final_source, taxonomy=taxonomy, val_sets=val_sets, val_specs=val_specs
    )
    skipped = _skipped_samples(out)
    if skipped:
        log.warning("%d training samples were skipped; see %s", len(skipped), out / METRICS_FILE)
    if is_global_zero():
        write_json_atomic(
            out / METRICS_FILE,
            {"checkpoint": str(final), "metrics": metrics, "skipped": skipped},
        )
    return TrainResult(
        best_checkpoint=best, final_checkpoint=final, metrics=metrics, history=history, out_dir=out
    )


def _skipped_samples(out: Path) -> list[dict[str, str]]:
    """Every training sample skipped in this run (all stages, all processes)."""
    return read_skip_records(out / SKIP_LOG)


def _remove_empty_files(folder: Path) -> None:
    """Delete zero-byte files a kill left behind in a stage's log folder (Lightning writes
    ``hparams.yaml`` non-atomically and never rewrites an existing one). Only the launching
    process does it, before any logger of this stage has started."""
    if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0":
        return
    if not folder.is_dir():
        return
    for path in folder.rglob("*"):
        if path.is_file() and path.stat().st_size == 0:
            log.info("removing %s left empty by an interrupted run", path)
            path.unlink(missing_ok=True)


def is_global_zero() -> bool:
    """Whether this process is rank 0 of ``torch.distributed`` (or not distributed)."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def validate_checkpoint(
    cfg: TrainConfig,
    checkpoint: Path,
    *,
    taxonomy: Taxonomy | None = None,
    val_sets: list[SegmentationTorchDataset] | None = None,
    val_specs: list[dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Validate a Lightning checkpoint of this config on the config's val sets, with the
    config's trainer settings (so DDP validation sums confusion matrices across processes).

    Returns:
        ``{val label: {"mIoU", "pixel_accuracy", "mean_accuracy", "pixels", "per_class_iou"}}``.
    """
    taxonomy = taxonomy or load_taxonomy(cfg.taxonomy)
    if val_sets is None or val_specs is None:
        val_sets, val_specs = build_val_sets(cfg, taxonomy=taxonomy)
    module = build_module(cfg, taxonomy=taxonomy, val_specs=val_specs)
    load_module_weights(module, Path(checkpoint))
    datamodule = SegmentationDataModule(
        train_sets=[],
        weights=[],
        val_sets=val_sets,
        batch_size=cfg.batch_size,
        val_batch_size=cfg.val_batch_size,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
    )
    trainer = L.Trainer(**_trainer_kwargs(cfg), logger=False, enable_checkpointing=False)
    trainer.validate(module, datamodule=datamodule, verbose=False)
    return metrics_from_logged(dict(trainer.callback_metrics), val_specs)
