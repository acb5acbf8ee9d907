"""Training entry point: :func:`run_training` (teacher or student, with the source
fine-tune stage), built on the stage runner of :mod:`labelbridge.engine.stage`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

from labelbridge.config.train import TrainConfig, TrainDatasetConfig
from labelbridge.data.torch_dataset import append_skip_record, read_skip_records
from labelbridge.engine.datamodule import SegmentationDataModule, build_train_sets
from labelbridge.engine.run_folder import METRICS_FILE, finish_run, open_run
from labelbridge.engine.stage import build_module, load_module_weights, resume_or_run_stage
from labelbridge.engine.stage_targets import StageTargets
from labelbridge.files import copy_file_atomic

log = logging.getLogger(__name__)

#: Stage folder names inside the run folder.
STAGE_TRAIN = "train"
STAGE_FINETUNE = "finetune"
#: JSON lines of training samples skipped under ``on_error: skip``.
SKIP_LOG = "skipped.jsonl"


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
            folder trained with other settings (:func:`~labelbridge.engine.run_folder.claim_run_folder`).
    """
    run = open_run(cfg, out_dir)
    out, taxonomy, val_sets, val_specs = run.out, run.taxonomy, run.val_sets, run.val_specs
    extra = list(callbacks or [])

    def datamodule(
        entries: list[TrainDatasetConfig], targets: StageTargets
    ) -> SegmentationDataModule:
        train_sets = build_train_sets(
            entries, taxonomy=taxonomy, resize=cfg.resize, targets=targets
        )
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
            train_layout=targets.layout,
        )

    def stage_parts(
        entries: list[TrainDatasetConfig], **module_args: Any
    ) -> tuple[L.LightningModule, L.LightningDataModule]:
        """A stage's module and data, learning from what ``entries`` give."""
        targets = StageTargets.of_entries(entries, cfg.partial_loss)
        module = build_module(
            cfg,
            cfg.model,
            taxonomy=taxonomy,
            val_specs=val_specs,
            targets=targets.hparams(),
            **module_args,
        )
        return module, datamodule(entries, targets)

    # ---- stage 1
    def build_stage1() -> tuple[L.LightningModule, L.LightningDataModule]:
        return stage_parts(cfg.datasets, weights=cfg.model.weights)

    best, history = resume_or_run_stage(
        cfg,
        stage=STAGE_TRAIN,
        stage_dir=out / STAGE_TRAIN,
        seed=cfg.seed,
        build=build_stage1,
        callbacks=extra,
    )
    final_source = best
    # ---- stage 2
    if cfg.finetune.enabled:

        def build_stage2() -> tuple[L.LightningModule, L.LightningDataModule]:
            module, data = stage_parts(
                cfg.source_datasets, lr_factor=cfg.finetune.lr_factor, warmup=False
            )
            load_module_weights(module, best)  # type: ignore[arg-type]
            return module, data

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
    skipped = _skipped_samples(out)
    if skipped:
        log.warning("%d training samples were skipped; see %s", len(skipped), out / METRICS_FILE)
    final, metrics = finish_run(
        cfg,
        run,
        best=final_source,
        model_spec=cfg.model.spec,
        export=copy_file_atomic,
        report={"skipped": skipped},
    )
    return TrainResult(
        best_checkpoint=best, final_checkpoint=final, metrics=metrics, history=history, out_dir=out
    )


def _skipped_samples(out: Path) -> list[dict[str, str]]:
    """Every training sample skipped in this run (all stages, all processes)."""
    return read_skip_records(out / SKIP_LOG)
