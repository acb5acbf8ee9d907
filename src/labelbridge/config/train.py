"""Config of a training run (``labelbridge train CONFIG.yaml``): teachers and students.

Example (``configs/student_camvid_idd.yaml``, shortened)::

    taxonomy: camvid11                  # the target label space
    datasets:
      - {name: camvid, root: ../shared/data/camvid, split: train, labels: gt, weight: 1.0}
      - {name: idd_lite, root: ../shared/data/idd_lite, split: train,
         labels: {pseudo: runs/pseudo/idd_lite}, weight: 0.5}
    val:
      - {name: camvid, root: ../shared/data/camvid, split: val, label: camvid}
      - {name: idd_lite, root: ../shared/data/idd_lite, split: val,
         ontology: idd_level1_to_camvid11, label: idd_lite}
    model: {spec: "espnetv2:s=1.0"}
    optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 0.01}
    schedule: {name: poly, power: 0.9, warmup_steps: 100}
    augment: {scale_range: [0.5, 2.0], crop: [288, 384], hflip: true}
    early_stopping: {patience: 15}
    finetune: {enabled: true, lr_factor: 0.1}
    output: runs/student_camvid_idd

Relative paths (dataset roots, pseudo-label folders, ontology files, weights, output)
are resolved against the working directory, as on the command line; a dataset ``root``
of ``null`` means ``$LABELBRIDGE_DATA/<name>``.

Model selection and early stopping watch the mIoU of the *selection* validation set:
the entry flagged ``select: true``, else the first ``val`` entry (normally the source
dataset's val split). The source fine-tune stage trains on the *source* datasets: the
entries flagged ``source: true``, else every entry with ``labels: gt``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from labelbridge.config.base import StrictModel, load_config

#: Report names of validation sets: letters, digits, ``._-`` (they become metric keys).
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PseudoLabels(StrictModel):
    """Labels read from a pseudo-label folder (``<pseudo>/<sample key>.png``, source train
    ids, with ``<pseudo>/pseudo_labels.yaml`` naming their taxonomy)."""

    pseudo: str


class TrainDatasetConfig(StrictModel):
    """One training dataset.

    Attributes:
        name: reader registry name (``labelbridge datasets list``).
        root: dataset root, or ``None`` for ``$LABELBRIDGE_DATA/<name>``.
        split: split name.
        labels: ``gt`` (the reader's own labels; its taxonomy must be the target
            taxonomy) or ``{pseudo: DIR}`` (a pseudo-label folder in the target taxonomy).
        weight: relative sampling weight; a batch element comes from this dataset with
            probability ``weight / sum(weights)``, whatever the dataset's size.
        on_error: ``raise`` on a bad file, or ``skip`` it (logged; a neighbour is used).
        source: part of the source data used by the fine-tune stage (default: every
            ``labels: gt`` entry when no entry sets it).
        limit: only the first ``limit`` samples (quick runs).
    """

    name: str
    root: str | None = None
    split: str = "train"
    labels: Literal["gt"] | PseudoLabels = "gt"
    weight: float = Field(default=1.0, gt=0)
    on_error: Literal["raise", "skip"] = "raise"
    source: bool | None = None
    limit: int | None = Field(default=None, ge=1)

    @property
    def pseudo_dir(self) -> Path | None:
        return Path(self.labels.pseudo) if isinstance(self.labels, PseudoLabels) else None


class ValDatasetConfig(StrictModel):
    """One validation set.

    Attributes:
        name: reader registry name.
        root: dataset root, or ``None`` for ``$LABELBRIDGE_DATA/<name>``.
        split: split name.
        ontology: mapping (name or file) from this set's taxonomy (its *extra* side) to
            the target taxonomy (its *source* side); predictions are projected through
            it before scoring. ``None``: the set's taxonomy must be the target taxonomy.
        label: report name (metric keys ``val/<label>/mIoU``); default ``name``.
        limit: only the first ``limit`` samples.
        select: this set's mIoU selects the best checkpoint and drives early stopping
            (default: the first entry).
        on_error: ``raise`` on a bad file, or ``skip`` it.
    """

    name: str
    root: str | None = None
    split: str = "val"
    ontology: str | None = None
    label: str | None = None
    limit: int | None = Field(default=None, ge=1)
    select: bool = False
    on_error: Literal["raise", "skip"] = "raise"

    @property
    def report_name(self) -> str:
        return self.label or self.name

    @field_validator("label")
    @classmethod
    def _safe_label(cls, value: str | None) -> str | None:
        if value is not None and not _LABEL_RE.match(value):
            raise ValueError(f"{value!r} must be letters, digits, '.', '_' or '-'")
        return value


class ModelConfig(StrictModel):
    """The network.

    Attributes:
        spec: model spec for :func:`labelbridge.models.create_model`, e.g.
            ``"espnetv2:s=1.0"``, ``"segformer:b0"``, ``"tiny"``.
        weights: initial weights (a state dict, labelbridge or Lightning checkpoint),
            loaded strictly, or ``None`` for the model's default initialisation.
        reinit_classifier: with ``weights`` for another class count (e.g. Cityscapes
            weights for a CamVid model), load everything but the classifier, which is
            re-initialised (logged).
        classifier_from: with ``weights`` of another taxonomy, an ontology mapping
            (built-in name or file) from this run's taxonomy (its extra side) to the
            weights' taxonomy (its source side), e.g. ``camvid11_to_cityscapes`` for
            Cityscapes weights and a CamVid-11 model: each new class's classifier row
            starts as the mean of the rows of the source classes it may be, instead of
            a random one. Excludes ``reinit_classifier``.
    """

    spec: str
    weights: str | None = None
    reinit_classifier: bool = False
    classifier_from: str | None = None

    @model_validator(mode="after")
    def _classifier_init(self) -> ModelConfig:
        if self.classifier_from is not None:
            if self.weights is None:
                raise ValueError("classifier_from needs weights")
            if self.reinit_classifier:
                raise ValueError("classifier_from and reinit_classifier exclude each other")
        return self


class OptimizerConfig(StrictModel):
    """Optimiser.

    Attributes:
        name: ``adamw`` or ``sgd`` (Nesterov-free, with ``momentum``).
        lr: base learning rate (decoder/head parameters; all of them without
            ``encoder_lr``).
        encoder_lr: learning rate of the encoder's parameters (those whose name starts
            with one of the model's ``encoder_prefixes``, see
            :func:`labelbridge.engine.optim.encoder_prefixes`); ``None``: ``lr``.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        momentum: SGD momentum (ignored by AdamW).
    """

    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(default=1e-3, gt=0)
    encoder_lr: float | None = Field(default=None, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)


class ScheduleConfig(StrictModel):
    """Learning-rate schedule, stepped every optimiser step.

    Attributes:
        name: ``poly`` (``(1 - t)^power``), ``cosine`` (half cosine to 0), ``multistep``
            (times ``gamma`` at each milestone epoch) or ``constant``; ``t`` runs from 0
            to 1 over the stage's planned steps.
        warmup_steps: linear warm-up from ``lr / 100`` over this many steps.
        warmup_epochs: warm-up length in epochs (added to ``warmup_steps``).
        power: exponent of ``poly``.
        milestones: epochs at which ``multistep`` multiplies the rate by ``gamma``.
        gamma: factor of ``multistep``.
    """

    name: Literal["poly", "cosine", "multistep", "constant"] = "poly"
    warmup_steps: int = Field(default=0, ge=0)
    warmup_epochs: int = Field(default=0, ge=0)
    power: float = Field(default=0.9, gt=0)
    milestones: list[int] = Field(default_factory=list)
    gamma: float = Field(default=0.1, gt=0)


class ColorJitterConfig(StrictModel):
    """Colour jitter strengths (0 = off), as in ``torchvision``/``kornia`` ``ColorJitter``."""

    brightness: float = Field(default=0.2, ge=0)
    contrast: float = Field(default=0.2, ge=0)
    saturation: float = Field(default=0.2, ge=0)
    hue: float = Field(default=0.0, ge=0, le=0.5)


class AugmentConfig(StrictModel):
    """Training augmentation, applied per batch on the training device.

    Attributes:
        enabled: ``False`` trains on the (resized) images as they are.
        scale_range: random rescale factor range ``[min, max]`` per image.
        crop: ``[H, W]`` random crop after rescaling (padded with ignore where the image
            is smaller); ``None``: crop back to the batch's input size.
        hflip: random horizontal flip with probability 0.5.
        color_jitter: see :class:`ColorJitterConfig`.
    """

    enabled: bool = True
    scale_range: tuple[float, float] = (0.5, 2.0)
    crop: tuple[int, int] | None = None
    hflip: bool = True
    color_jitter: ColorJitterConfig = Field(default_factory=ColorJitterConfig)

    def module_kwargs(self) -> dict[str, Any] | None:
        """Keyword arguments of :class:`labelbridge.engine.augment.SegmentationAugment`
        (``None`` when disabled), in plain types: they are saved as the module's
        hyper-parameters, and Lightning's ``hparams.yaml`` must load with a safe loader."""
        if not self.enabled:
            return None
        return {
            "scale_range": list(self.scale_range),
            "crop": list(self.crop) if self.crop is not None else None,
            "hflip": self.hflip,
            **self.color_jitter.model_dump(),
        }

    @field_validator("scale_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError(
                f"scale_range must be [min, max] with 0 < min <= max, got {list(value)}"
            )
        return value

    @field_validator("crop")
    @classmethod
    def _positive_crop(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError(f"crop must be [H, W] with positive sides, got {list(value)}")
        return value


class EarlyStoppingConfig(StrictModel):
    """Stop a stage when the selection set's mIoU (``val/select/mIoU``) has not improved
    by more than ``min_delta`` for ``patience`` validations."""

    enabled: bool = True
    patience: int = Field(default=15, ge=1)
    min_delta: float = Field(default=0.0, ge=0)


class FinetuneConfig(StrictModel):
    """Stage 2: fine-tune the best stage-1 checkpoint on the source datasets alone.

    Attributes:
        enabled: run the stage.
        lr_factor: learning rates (``lr`` and ``encoder_lr``) times this factor.
        epochs: maximum epochs of the stage (``None``: the config's ``epochs``).
        patience: early-stopping patience of the stage (``None``: ``early_stopping.patience``).
    """

    enabled: bool = True
    lr_factor: float = Field(default=0.1, gt=0)
    epochs: int | None = Field(default=None, ge=1)
    patience: int | None = Field(default=None, ge=1)


class TrainerConfig(StrictModel):
    """Passed straight to ``lightning.Trainer``: multi-GPU and multi-node DDP need only
    ``devices``, ``strategy`` (``ddp``) and ``num_nodes``.

    Attributes:
        accelerator: ``auto``, ``cpu``, ``gpu``, ...
        devices: count, list of indices, or ``auto``.
        strategy: ``auto``, ``ddp``, ``ddp_spawn``, ...
        num_nodes: machines.
        log_every_n_steps: logging interval (at most the steps of one epoch).
        num_sanity_val_steps: validation batches run before training to catch errors.
        enable_progress_bar: Lightning's progress bar where stderr is a terminal;
            elsewhere a progress line with an ETA every $LABELBRIDGE_PROGRESS_INTERVAL
            seconds (default 30).
        enable_model_summary: log one line naming the model and its parameter counts when
            a stage starts.
        deterministic: ``torch.use_deterministic_algorithms``-style determinism.
        sync_batchnorm: convert BatchNorm layers to SyncBatchNorm under DDP (small
            per-device batches).
    """

    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(default=1, ge=1)
    log_every_n_steps: int = Field(default=10, ge=1)
    num_sanity_val_steps: int = Field(default=2, ge=-1)
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    deterministic: bool = False
    sync_batchnorm: bool = False


class TrainConfig(StrictModel):
    """Everything ``labelbridge train`` needs.

    Attributes:
        taxonomy: target label space (built-in name or file).
        datasets: training datasets; see :class:`TrainDatasetConfig`.
        val: validation sets; see :class:`ValDatasetConfig`.
        model: see :class:`ModelConfig`.
        optimizer: see :class:`OptimizerConfig`.
        schedule: see :class:`ScheduleConfig`.
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        precision: ``32``, ``16-mixed`` or ``bf16-mixed``.
        batch_size: training images per batch and process.
        val_batch_size: validation images per batch and process.
        epochs: maximum epochs of stage 1.
        steps_per_epoch: optimiser steps per epoch (``None``: the summed dataset sizes
            divided by the global batch size); samples are drawn by the weighted sampler.
        num_workers: data-loading processes per training process.
        seed: seeds Python, numpy and torch (and the sampler).
        augment: see :class:`AugmentConfig`.
        early_stopping: see :class:`EarlyStoppingConfig`.
        finetune: see :class:`FinetuneConfig`.
        trainer: see :class:`TrainerConfig`.
        resize: ``[W, H]``: resize every train and val image (bilinear) and label
            (nearest) before batching; ``None``: keep sizes (a batch of different sizes is
            padded to the largest, labels with ignore).
        output: run folder (checkpoints, logs, metrics); re-running with the same folder
            resumes.
    """

    taxonomy: str
    datasets: list[TrainDatasetConfig] = Field(min_length=1)
    val: list[ValDatasetConfig] = Field(min_length=1)
    model: ModelConfig
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    grad_clip: float | None = Field(default=None, gt=0)
    precision: Literal["32", "16-mixed", "bf16-mixed"] = "32"
    batch_size: int = Field(default=8, ge=1)
    val_batch_size: int = Field(default=4, ge=1)
    epochs: int = Field(default=100, ge=1)
    steps_per_epoch: int | None = Field(default=None, ge=1)
    num_workers: int = Field(default=2, ge=0)
    seed: int = 0
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    resize: tuple[int, int] | None = None
    output: str

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_text(cls, value: object) -> object:
        # YAML reads ``precision: 32`` as an int
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("resize")
    @classmethod
    def _positive_resize(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError(f"resize must be [W, H] with positive sides, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        labels = [v.report_name for v in self.val]
        dup = sorted({n for n in labels if labels.count(n) > 1})
        if dup:
            raise ValueError(
                f"val report names must be unique (give each a 'label'); repeated: {dup}"
            )
        if sum(v.select for v in self.val) > 1:
            raise ValueError("at most one val entry may set 'select: true'")
        if self.finetune.enabled and not self.source_datasets:
            raise ValueError(
                "finetune.enabled needs source datasets: an entry with 'source: true' or 'labels: gt'"
            )
        return self

    # ------------------------------------------------------------------ derived
    @property
    def select_index(self) -> int:
        """Index of the model-selection val set (``select: true``, else 0)."""
        return next((i for i, v in enumerate(self.val) if v.select), 0)

    @property
    def source_datasets(self) -> list[TrainDatasetConfig]:
        """Datasets of the fine-tune stage: ``source: true`` entries, else ``labels: gt`` ones."""
        flagged = [d for d in self.datasets if d.source]
        if flagged:
            return flagged
        return [d for d in self.datasets if d.labels == "gt" and d.source is not False]

    @property
    def output_dir(self) -> Path:
        return Path(self.output)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load and validate a training config file.

    Raises:
        ConfigError: unknown keys, wrong types or values, naming file, key and line.
    """
    return load_config(TrainConfig, path, overrides)
