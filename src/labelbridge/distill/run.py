"""Distillation into a compact student: :class:`DistillationModule` and
:func:`run_distillation` (``labelbridge distill CONFIG.yaml``).

Built on the training engine: :class:`~labelbridge.distill.module.DistillationModule`
is a :class:`~labelbridge.engine.module.SegmentationModule` (same optimiser, schedule,
on-device augmentation, validation with summed confusion matrices, checkpoint metadata)
whose step hook runs :class:`~labelbridge.distill.task.DistillationTask` on a source
batch and a target batch; every loss term is logged as ``train/<term>`` (TensorBoard and
CSV). The stage runs through the training engine's stage runner
(:func:`~labelbridge.engine.stage.resume_or_run_stage`) and epilogue
(:func:`~labelbridge.engine.stage.finish_run`). The frozen teacher is not a submodule, so
it is neither saved nor wrapped by DDP.

A run folder holds::

    <out>/config.yaml                 the resolved config
    <out>/distill/checkpoints/        best-*.ckpt (selection mIoU) and last.ckpt; these
                                      also hold the feature adapter / discriminator
                                      weights needed to resume
    <out>/distill/logs/{tensorboard,csv}/
    <out>/distill/stage_done.json     written atomically when the run has finished
    <out>/final.ckpt                  the best student alone, with labelbridge metadata
                                      (``labelbridge evaluate`` / ``predict`` read it)
    <out>/metrics.json                validation metrics of ``final.ckpt``

Re-running with the same output folder resumes from ``last.ckpt`` (or skips a finished
run). ``trainer.devices`` / ``strategy`` / ``num_nodes`` go to Lightning as in training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

from labelbridge.config.distill import DistillConfig
from labelbridge.distill.data import DistillDataModule, build_target_sets
from labelbridge.distill.module import build_distill_module
from labelbridge.engine.datamodule import build_train_sets
from labelbridge.engine.run_folder import finish_run, open_run
from labelbridge.engine.stage import resume_or_run_stage
from labelbridge.errors import CheckpointError
from labelbridge.files import atomic_output

log = logging.getLogger(__name__)

#: Stage folder inside the run folder.
STAGE_DISTILL = "distill"
#: State-dict prefix of the student inside the module (as in training).
STUDENT_PREFIX = "model."
#: Lightning checkpoint entries that :func:`export_student` leaves out (training state).
_NOT_EXPORTED = ("optimizer_states", "lr_schedulers", "callbacks", "loops", "hyper_parameters")


@dataclass
class DistillResult:
    """Outcome of :func:`run_distillation`.

    Attributes:
        best_checkpoint: best Lightning checkpoint (selection mIoU; includes the adapter
            and discriminator).
        final_checkpoint: ``<out>/final.ckpt``, the best student alone.
        metrics: validation metrics of the final student (as in training).
        loss_terms: names of the active loss terms.
        history: one entry per validation.
        out_dir: the run folder.
    """

    best_checkpoint: Path
    final_checkpoint: Path
    metrics: dict[str, dict[str, Any]]
    loss_terms: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path = Path(".")


def export_student(checkpoint: Path, out: Path) -> None:
    """Write the student of a distillation checkpoint alone to ``out``, atomically.

    The file keeps the Lightning checkpoint layout (``state_dict`` with ``model.*`` keys,
    ``labelbridge`` metadata, Lightning's version and step entries), so
    :func:`labelbridge.models.load_checkpoint`, ``labelbridge evaluate`` and
    :func:`~labelbridge.engine.stage.validate_checkpoint` read it like a training
    checkpoint; the adapter / discriminator weights and the optimiser state are left out.

    Raises:
        CheckpointError: unreadable file, or no ``labelbridge`` metadata / student keys.
    """
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"{checkpoint}: cannot read checkpoint: {exc}") from None
    state = {k: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith(STUDENT_PREFIX)}
    if "labelbridge" not in ckpt or not state:
        raise CheckpointError(
            f"{checkpoint}: not a distillation checkpoint (no labelbridge metadata or student)"
        )
    keep = {k: v for k, v in ckpt.items() if k not in _NOT_EXPORTED}
    keep["state_dict"] = state
    with atomic_output(out) as fh:
        torch.save(keep, fh)


def run_distillation(
    cfg: DistillConfig, *, out_dir: Path | None = None, callbacks: list[L.Callback] | None = None
) -> DistillResult:
    """Distil the teacher into the student, export the best student, validate it.

    Args:
        cfg: the run's config.
        out_dir: run folder (default ``cfg.output``); an existing one is resumed.
        callbacks: extra Lightning callbacks.

    Returns:
        Checkpoints, the final student's validation metrics, loss-term names, history.

    Raises:
        ConfigError / DatasetError / CheckpointError: problems with the inputs.
    """
    run = open_run(cfg, out_dir)
    out, taxonomy, val_sets = run.out, run.taxonomy, run.val_sets
    target_sets, target_ontologies = build_target_sets(
        cfg.target, taxonomy=taxonomy, resize=cfg.resize
    )
    loss_terms: list[str] = []

    def build() -> tuple[L.LightningModule, L.LightningDataModule]:
        module = build_distill_module(
            cfg, taxonomy=taxonomy, val_specs=run.val_specs, target_ontologies=target_ontologies
        )
        loss_terms.extend(module.loss_names)
        log.info(
            "distillation loss terms: %s",
            ", ".join(f"{t.name}={t.weight:g}" for t in module.task.terms),
        )
        datamodule = DistillDataModule(
            target_sets=target_sets,
            target_weights=[e.weight for e in cfg.target],
            target_batch_size=cfg.target_batch_size or cfg.batch_size,
            train_sets=build_train_sets(cfg.source, taxonomy=taxonomy, resize=cfg.resize),
            weights=[e.weight for e in cfg.source],
            val_sets=val_sets,
            batch_size=cfg.batch_size,
            val_batch_size=cfg.val_batch_size,
            num_workers=cfg.num_workers,
            steps_per_epoch=cfg.steps_per_epoch,
            seed=cfg.seed,
        )
        return module, datamodule

    best, history = resume_or_run_stage(
        cfg,
        stage=STAGE_DISTILL,
        stage_dir=out / STAGE_DISTILL,
        seed=cfg.seed,
        build=build,
        callbacks=list(callbacks or []),
    )
    final, metrics = finish_run(
        cfg,
        run,
        best=best,
        model_spec=cfg.student.spec,
        export=export_student,
        report={"loss_terms": loss_terms},
    )
    return DistillResult(
        best_checkpoint=best,
        final_checkpoint=final,
        metrics=metrics,
        loss_terms=loss_terms,
        history=history,
        out_dir=out,
    )
