"""Distillation into a compact student: :class:`DistillationModule` and
:func:`run_distillation` (``labelbridge distill CONFIG.yaml``).

Built on the training engine: :class:`DistillationModule` is a
:class:`~labelbridge.engine.module.SegmentationModule` (same optimiser, schedule,
on-device augmentation, validation with summed confusion matrices, checkpoint metadata)
whose training step runs :class:`~labelbridge.engine.distill_losses.DistillationTask`
on a source batch and a target batch and logs every loss term as ``train/<term>``
(TensorBoard and CSV). The frozen teacher is not a submodule, so it is neither saved nor
wrapped by DDP.

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
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from labelbridge.config.distill import DistillConfig, TargetDatasetConfig
from labelbridge.data import create_dataset
from labelbridge.data.base import SegmentationDataset, SkipRecord
from labelbridge.data.sampling import WeightedDatasetSampler
from labelbridge.data.torch_dataset import pad_collate, resize_pair
from labelbridge.engine.distill_losses import TARGET_LABEL_OFFSET, DistillationTask, DistillWeights
from labelbridge.engine.losses import total_loss
from labelbridge.engine.module import SegmentationModule
from labelbridge.engine.optim import build_optimizer
from labelbridge.engine.train import (
    SegmentationDataModule,
    build_train_sets,
    build_val_sets,
    claim_run_folder,
    is_global_zero,
    resume_or_run_stage,
    validate_checkpoint,
)
from labelbridge.errors import CheckpointError, ConfigError, DatasetError
from labelbridge.files import atomic_output, write_json_atomic
from labelbridge.models.base import SegmentationModel
from labelbridge.taxonomy import Taxonomy, load_ontology, load_taxonomy
from labelbridge.taxonomy.priors import allowed_tensor

log = logging.getLogger(__name__)

#: Stage folder, final checkpoint and metrics file names inside the run folder.
STAGE_DISTILL = "distill"
FINAL_CHECKPOINT = "final.ckpt"
METRICS_FILE = "metrics.json"
#: State-dict prefix of the student inside the module (as in training).
STUDENT_PREFIX = "model."
#: Lightning checkpoint entries that :func:`export_student` leaves out (training state).
_NOT_EXPORTED = ("optimizer_states", "lr_schedulers", "callbacks", "loops", "hyper_parameters")


# ---------------------------------------------------------------------------- data
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
        for attempt in range(len(self.indices)):
            try:
                image, labels = self._load(position)
                return image, labels, self.domain
            except DatasetError as exc:
                if self.reader.on_error == "raise" or attempt == len(self.indices) - 1:
                    raise
                path = self.reader.pairs[self.indices[position]].image
                self.reader.skipped.append(SkipRecord(str(path), str(exc)))
                log.warning("skipping a bad target sample: %s", exc)
                position = (position + 1) % len(self.indices)
        raise DatasetError(f"{self.reader.root}: no readable target samples")  # pragma: no cover


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
        reader = create_dataset(entry.name, entry.root, entry.split, on_error=entry.on_error)
        if entry.ontology is not None:
            onto = load_ontology(entry.ontology)
            _check_ontology(onto, taxonomy=taxonomy, what=f"target dataset {entry.name!r}")
            if not onto.extra.same_label_space(reader.taxonomy):
                raise ConfigError(
                    f"{onto.origin}: target dataset {entry.name!r} is in taxonomy {reader.taxonomy.name!r}, "
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


def _check_ontology(onto: Any, *, taxonomy: Taxonomy, what: str) -> None:
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


# ---------------------------------------------------------------------------- models
def build_teacher(
    *, spec: str | None, weights: str, num_classes: int, taxonomy: Taxonomy
) -> SegmentationModel:
    """The frozen teacher: ``create_model(spec, num_classes, weights)``, or the model of a
    labelbridge checkpoint when ``spec`` is ``None``.

    Raises:
        CheckpointError: unreadable weights, or a checkpoint of another taxonomy.
    """
    from labelbridge.models import load_model

    if spec is None:
        loaded = load_model(checkpoint=weights, what="teacher (teacher.weights)")
        if not loaded.taxonomy.same_train_space(taxonomy):
            raise CheckpointError(
                f"{weights}: the teacher predicts taxonomy {loaded.taxonomy.name!r}, the distillation "
                f"uses {taxonomy.name!r}"
            )
    else:
        if not Path(weights).is_file():  # a randomly initialised teacher teaches nothing
            raise CheckpointError(f"{weights}: teacher weights not found (teacher.weights)")
        loaded = load_model(spec=spec, weights=weights, taxonomy=taxonomy, what="teacher")
    model = loaded.model
    if model.num_classes != num_classes:
        raise CheckpointError(
            f"{weights}: the teacher predicts {model.num_classes} classes, the distillation "
            f"taxonomy {taxonomy.name!r} has {num_classes}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class DistillationModule(SegmentationModule):
    """Trains a student (attribute ``model``) from a frozen teacher.

    Args:
        model_spec: the student's spec.
        taxonomy: the label space as :meth:`Taxonomy.to_dict`.
        optimizer: see :class:`SegmentationModule` (also used for the feature adapter
            and the discriminator, in an extra parameter group ``"distill"``).
        schedule: see :class:`SegmentationModule`.
        augment: see :class:`SegmentationModule`; source and target batches are
            augmented independently, and teacher and student see the same images.
        val_sets: see :class:`SegmentationModule`.
        weights: initial student weights.
        reinit_classifier: see :class:`SegmentationModule`.
        classifier_from: see :class:`SegmentationModule`.
        teacher_spec: the teacher's spec, or ``None`` for a labelbridge checkpoint.
        teacher_weights: the teacher's weights file.
        teacher_scale: input resize factor of the teacher.
        losses: loss weights (fields of :class:`DistillWeights`).
        temperature: KD temperature.
        kd_priors: restrict the target soft labels to the ontology's allowed classes.
        distill_on: ``"both"``, ``"source"`` or ``"target"``: the batches of the KD and
            feature terms.
        kd_source_agree: KD on source images only where teacher and label agree.
        pseudo_threshold: confidence threshold of target pseudo-labels, or ``None``.
        target_ontologies: per target dataset (domain), its mapping name/file or ``None``.
        discriminator_width: first-layer width of the output-space discriminator.
    """

    def __init__(
        self,
        *,
        model_spec: str,
        taxonomy: dict[str, Any],
        optimizer: dict[str, Any],
        schedule: dict[str, Any],
        augment: dict[str, Any] | None = None,
        val_sets: list[dict[str, Any]] | None = None,
        weights: str | None = None,
        reinit_classifier: bool = False,
        classifier_from: str | None = None,
        teacher_spec: str | None = None,
        teacher_weights: str,
        teacher_scale: float = 1.0,
        losses: dict[str, float] | None = None,
        temperature: float = 1.0,
        kd_priors: bool = True,
        distill_on: str = "both",
        kd_source_agree: bool = False,
        pseudo_threshold: float | None = None,
        target_ontologies: list[str | None] | None = None,
        discriminator_width: int = 64,
    ) -> None:
        super().__init__(
            model_spec=model_spec,
            taxonomy=taxonomy,
            optimizer=optimizer,
            schedule=schedule,
            augment=augment,
            val_sets=val_sets,
            weights=weights,
            reinit_classifier=reinit_classifier,
            classifier_from=classifier_from,
        )
        teacher = build_teacher(
            spec=teacher_spec,
            weights=teacher_weights,
            num_classes=self.taxonomy.num_classes,
            taxonomy=self.taxonomy,
        )
        priors: list[torch.Tensor | None] = []
        for name in target_ontologies or []:
            if name is None:
                priors.append(None)
                continue
            onto = load_ontology(name)
            _check_ontology(onto, taxonomy=self.taxonomy, what="target ontology")
            if onto.has_void_option:
                void_rows = [c.name for c in onto.extra.classes if onto.void_allowed[c.id]]
                raise ConfigError(
                    f"{onto.origin}: rows {void_rows} have the void option ('ignore' beside "
                    "classes), which distillation does not support yet; pseudo-label the "
                    "target first (labelbridge pseudo-label) or drop 'ignore' from those rows"
                )
            priors.append(allowed_tensor(onto.allowed))
        self.task = DistillationTask(
            student=self.model,
            teacher=teacher,
            weights=DistillWeights(**(losses or {})),
            temperature=temperature,
            pseudo_threshold=pseudo_threshold,
            target_priors=priors,
            kd_priors=kd_priors,
            distill_on=distill_on,
            kd_source_agree=kd_source_agree,
            teacher_scale=teacher_scale,
            discriminator_width=discriminator_width,
            owns_student=False,
        )

    @property
    def teacher(self) -> SegmentationModel:
        """The frozen teacher (not a submodule: outside ``state_dict`` and DDP)."""
        return self.task.teacher

    @property
    def loss_names(self) -> list[str]:
        """Names of the active loss terms (logged as ``train/<name>``)."""
        return [t.name for t in self.task.terms]

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, **self.optimizer_args)
        extra = [p for p in self.task.parameters() if p.requires_grad]
        if extra:
            optimizer.add_param_group(
                {"params": extra, "lr": self.optimizer_args["lr"], "name": "distill"}
            )
        return self.with_scheduler(optimizer)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        images, target = batch["source"]
        images = images.float() / 255.0
        if self.augment is not None:
            images, target = self.augment(images, target)
        kwargs: dict[str, torch.Tensor] = {}
        if batch.get("target") is not None:
            t_images, t_labels, t_domains = batch["target"]
            t_images = t_images.float() / 255.0
            if self.augment is not None:
                t_images, t_labels = self.augment(t_images, t_labels)
            kwargs = {
                "target_images": t_images,
                "target_extra_labels": t_labels,
                "target_domains": t_domains,
            }
        terms = self.task(source_images=images, source_labels=target, **kwargs)
        loss, values = total_loss({"loss": self.task.total(terms), **terms}, step=self.global_step)
        for name, value in values.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=images.shape[0])
        return loss


# ---------------------------------------------------------------------------- the run
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


def build_distill_module(
    cfg: DistillConfig,
    *,
    taxonomy: Taxonomy,
    val_specs: list[dict[str, Any]],
    target_ontologies: list[str | None],
) -> DistillationModule:
    """The :class:`DistillationModule` of a config."""
    return DistillationModule(
        model_spec=cfg.student.spec,
        taxonomy=taxonomy.to_dict(),
        optimizer=cfg.optimizer.model_dump(),
        schedule=cfg.schedule.model_dump(),
        augment=cfg.augment.module_kwargs(),
        val_sets=val_specs,
        weights=cfg.student.weights,
        reinit_classifier=cfg.student.reinit_classifier,
        classifier_from=cfg.student.classifier_from,
        teacher_spec=cfg.teacher.spec,
        teacher_weights=cfg.teacher.weights,
        teacher_scale=cfg.teacher.input_scale,
        losses=cfg.losses.model_dump(),
        temperature=cfg.temperature,
        kd_priors=cfg.kd_priors,
        distill_on=cfg.distill_on,
        kd_source_agree=cfg.kd_source_agree,
        pseudo_threshold=cfg.pseudo_threshold,
        target_ontologies=target_ontologies,
        discriminator_width=cfg.discriminator_width,
    )


def export_student(checkpoint: Path, out: Path) -> None:
    """Write the student of a distillation checkpoint alone to ``out``, atomically.

    The file keeps the Lightning checkpoint layout (``state_dict`` with ``model.*`` keys,
    ``labelbridge`` metadata, Lightning's version and step entries), so
    :func:`labelbridge.models.load_checkpoint`, ``labelbridge evaluate`` and
    :func:`~labelbridge.engine.train.validate_checkpoint` read it like a training
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
    out = Path(out_dir) if out_dir is not None else cfg.output_dir
    claim_run_folder(cfg, out)
    taxonomy = load_taxonomy(cfg.taxonomy)
    student_cfg = cfg.student_train_config()
    val_sets, val_specs = build_val_sets(student_cfg, taxonomy=taxonomy)
    target_sets, target_ontologies = build_target_sets(
        cfg.target, taxonomy=taxonomy, resize=cfg.resize
    )
    loss_terms: list[str] = []

    def build() -> tuple[L.LightningModule, L.LightningDataModule]:
        module = build_distill_module(
            cfg, taxonomy=taxonomy, val_specs=val_specs, target_ontologies=target_ontologies
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
        student_cfg,
        stage=STAGE_DISTILL,
        stage_dir=out / STAGE_DISTILL,
        seed=cfg.seed,
        build=build,
        max_epochs=cfg.epochs,
        patience=cfg.early_stopping.patience,
        callbacks=list(callbacks or []),
    )
    final = out / FINAL_CHECKPOINT
    if is_global_zero():
        export_student(best, final)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    metrics = validate_checkpoint(
        student_cfg, final, taxonomy=taxonomy, val_sets=val_sets, val_specs=val_specs
    )
    if is_global_zero():
        write_json_atomic(
            out / METRICS_FILE,
            {"checkpoint": str(final), "metrics": metrics, "loss_terms": loss_terms},
        )
    return DistillResult(
        best_checkpoint=best,
        final_checkpoint=final,
        metrics=metrics,
        loss_terms=loss_terms,
        history=history,
        out_dir=out,
    )
