"""One stage of a run, for every training-like command (train, fine-tune, distill): the
run folder's claim on its config, the Lightning trainer with its checkpoints, loggers and
callbacks, resume from ``last.ckpt``, the done-marker, and the run's epilogue (export the
final model, validate it).

A stage folder holds::

    <stage>/checkpoints/          best-*.ckpt (selection mIoU) and last.ckpt (resume point)
    <stage>/logs/{tensorboard,csv}/
    <stage>/stage_done.json       written atomically when the stage has finished
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

from labelbridge.config.run import ModelConfig, RunSettings, StageConfig
from labelbridge.data.torch_dataset import SegmentationTorchDataset
from labelbridge.engine.callbacks import (
    STAGE_MARKER,
    HistoryCallback,
    ProgressLines,
    RandomStateCallback,
    StderrProgressBar,
    SummaryLine,
    read_stage_marker,
    write_stage_marker,
)
from labelbridge.engine.datamodule import SegmentationDataModule, build_val_sets
from labelbridge.engine.loggers import LOGS, build_callbacks, build_loggers, finish_loggers
from labelbridge.engine.module import SELECT_METRIC, SegmentationModule
from labelbridge.errors import CheckpointError, ConfigError
from labelbridge.progress import stderr_is_terminal
from labelbridge.sharding import slurm_shard, slurm_task, torchrun_shard
from labelbridge.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

# Validation metrics are computed from confusion matrices already summed across
# processes, so every rank logs the same value; Lightning's advice to sync them is moot.
warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('val/")

#: File stem of the latest checkpoint of a stage (resume point).
LAST_NAME = "last"


def module_kwargs(
    cfg: RunSettings,
    model: ModelConfig,
    *,
    taxonomy: Taxonomy,
    val_specs: list[dict[str, Any]],
    lr_factor: float = 1.0,
    warmup: bool = True,
    weights: str | None = None,
    targets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The :class:`~labelbridge.engine.module.SegmentationModule` arguments of a stage:
    ``model``, trained with ``cfg``'s optimiser, schedule and augmentation; ``lr_factor``
    scales ``lr`` and ``encoder_lr``; ``weights`` (normally ``model.weights`` for a first
    stage, else ``None``) initialise it, with the model's classifier options; ``targets``
    (:meth:`~labelbridge.engine.stage_targets.StageTargets.hparams`) where the stage
    learns from soft or partial labels."""
    opt = cfg.optimizer.model_dump()
    opt["lr"] = opt["lr"] * lr_factor
    if opt["encoder_lr"] is not None:
        opt["encoder_lr"] = opt["encoder_lr"] * lr_factor
    schedule = cfg.schedule.model_dump()
    if not warmup:
        schedule["warmup_steps"] = schedule["warmup_epochs"] = 0
    return {
        "model_spec": model.spec,
        "taxonomy": taxonomy.to_dict(),
        "optimizer": opt,
        "schedule": schedule,
        "augment": cfg.augment.module_kwargs(),
        "val_sets": val_specs,
        "weights": weights,
        "reinit_classifier": model.reinit_classifier if weights is not None else False,
        "classifier_from": model.classifier_from if weights is not None else None,
        **({"targets": targets} if targets is not None else {}),
    }


def build_module(cfg: RunSettings, model: ModelConfig, **kwargs: Any) -> SegmentationModule:
    """The :class:`~labelbridge.engine.module.SegmentationModule` of a stage (arguments as
    :func:`module_kwargs`)."""
    return SegmentationModule(**module_kwargs(cfg, model, **kwargs))


def _trainer_kwargs(cfg: RunSettings) -> dict[str, Any]:
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


def progress_callbacks(cfg: RunSettings, stage: str) -> list[L.Callback]:
    """What shows a trainer's progress (``trainer.enable_progress_bar``): Lightning's bar on
    stderr where stderr is a terminal, else progress lines in the log; never stdout, which
    carries ``--json`` output. Every trainer of the engine takes these."""
    if not cfg.trainer.enable_progress_bar:
        return []
    if stderr_is_terminal():
        return [StderrProgressBar()]
    return [ProgressLines(stage, metric=SELECT_METRIC)]


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


def resume_or_run_stage(
    cfg: RunSettings,
    *,
    stage: str,
    stage_dir: Path,
    seed: int,
    build: Callable[[], tuple[L.LightningModule, L.LightningDataModule]],
    callbacks: list[L.Callback],
    max_epochs: int | None = None,
    patience: int | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """A finished stage's best checkpoint and history (read from its marker); otherwise
    seed everything with ``seed``, ``build()`` the module and data (only then) and
    :func:`run_stage` it, for ``max_epochs`` (default ``cfg.epochs``) with early-stopping
    ``patience`` (default ``cfg.early_stopping.patience``)."""
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
    max_epochs = cfg.epochs if max_epochs is None else max_epochs
    patience = cfg.early_stopping.patience if patience is None else patience
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
    cfg: RunSettings,
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
    _remove_empty_files(stage_dir / LOGS)
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
    cbs += progress_callbacks(cfg, stage)
    if cfg.early_stopping.enabled:
        cbs.append(
            EarlyStopping(
                monitor=SELECT_METRIC,
                mode="max",
                patience=patience,
                min_delta=cfg.early_stopping.min_delta,
            )
        )
    cbs += build_callbacks(cfg.trainer.callbacks)
    loggers = build_loggers(cfg.trainer.loggers, stage_dir)
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
    check_one_trainer_per_task(trainer, stage_dir)
    last = ckpt_dir / f"{LAST_NAME}.ckpt"
    resume = last if last.is_file() else None
    if resume is not None:
        log.info("%s: resuming from %s", stage, resume)
    else:
        start_stage_over(stage, ckpt_dir, max_epochs)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    finally:
        finish_loggers(loggers)
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


def check_one_trainer_per_task(trainer: L.Trainer, stage_dir: Path) -> None:
    """Refuse a trainer of one process in one of several srun tasks: Lightning picks its
    single-device strategy there (``trainer.devices=1``, one node) and checks nothing, so
    every task would train the whole stage on its own, into the same folder at once.

    Raises:
        ConfigError: srun started several tasks (not torchrun inside them), and the
            trainer's devices and nodes make one process.
    """
    task = slurm_shard()
    if task is None or torchrun_shard() is not None or trainer.world_size > 1:
        return
    raise ConfigError(
        f"{stage_dir}: srun started {task.count} tasks, but trainer.devices and "
        "trainer.num_nodes make one training process, so every task would train this stage "
        "on its own, into the same folder at once. Set trainer.devices to srun's tasks per "
        "node (--ntasks-per-node) and trainer.num_nodes to its nodes (with "
        "trainer.strategy=ddp), or start one task (srun --ntasks=1)"
    )


def _log_interval(every: int, datamodule: L.LightningDataModule) -> int:
    """``every``, or the epoch's step count where an epoch is shorter (so that short
    epochs still log their training loss, and Lightning does not warn about it)."""
    steps = getattr(datamodule, "train_steps_per_epoch", None)
    return max(1, min(every, steps())) if callable(steps) else every


def start_stage_over(stage: str, ckpt_dir: Path, max_epochs: int) -> None:
    """(Called by :func:`run_stage` when there is no ``last.ckpt``.) Say that ``stage`` starts from its first epoch; remove the checkpoints an earlier
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


def _remove_empty_files(folder: Path) -> None:
    """Delete zero-byte files a kill left behind in a stage's log folder (Lightning writes
    ``hparams.yaml`` non-atomically and never rewrites an existing one). Only the launching
    process does it (not Lightning's or torchrun's other processes, not srun's other
    tasks), before any logger of this stage has started."""
    if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0":
        return
    task = slurm_task()
    if task is not None and task.index != 0:
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
    cfg: StageConfig,
    checkpoint: Path,
    *,
    model_spec: str,
    taxonomy: Taxonomy | None = None,
    val_sets: list[SegmentationTorchDataset] | None = None,
    val_specs: list[dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Validate a Lightning checkpoint of a ``model_spec`` model on the config's val sets,
    with the config's trainer settings (so DDP validation sums confusion matrices across
    processes).

    Returns:
        ``{val label: {"mIoU", "pixel_accuracy", "mean_accuracy", "pixels", "per_class_iou"}}``.
    """
    taxonomy = taxonomy or load_taxonomy(cfg.taxonomy)
    if val_sets is None or val_specs is None:
        val_sets, val_specs = build_val_sets(cfg, taxonomy=taxonomy)
    module = build_module(cfg, ModelConfig(spec=model_spec), taxonomy=taxonomy, val_specs=val_specs)
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
    trainer = L.Trainer(
        **_trainer_kwargs(cfg),
        logger=False,
        enable_checkpointing=False,
        callbacks=progress_callbacks(cfg, "validate"),
    )
    trainer.validate(module, datamodule=datamodule, verbose=False)
    return metrics_from_logged(dict(trainer.callback_metrics), val_specs)
