"""Run settings shared by every training-like stage (``labelbridge train`` and
``labelbridge distill``): the model, optimiser, schedule, augmentation, early stopping,
trainer and batch settings (:class:`RunSettings`), and the label space with its
validation sets (:class:`EvaluatedStage`). :class:`StageConfig` is both: the part of a
stage config that the training engine reads (:mod:`labelbridge.engine.train`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from labelbridge.config.base import StrictModel
from labelbridge.config.parts import ValDatasetConfig, unique_report_names


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


#: Loggers a training stage can write to (``trainer.loggers``).
LOGGER_NAMES = ("tensorboard", "csv", "wandb", "mlflow")


class LoggerConfig(StrictModel):
    """One Lightning logger of a training stage; a bare name in YAML means no options.

    Attributes:
        name: ``tensorboard`` and ``csv`` (into the stage folder's ``logs/``), ``wandb``
            (Weights & Biases; ``pip install wandb``; ``options: {offline: true}`` or
            ``WANDB_MODE=offline`` needs no account) or ``mlflow`` (``pip install
            mlflow-skinny sqlalchemy alembic``; default store: ``sqlite:///<stage>/logs/mlflow.db``).
        options: keyword arguments of the Lightning logger class (``project``,
            ``tracking_uri``, ``experiment_name``, ...).
    """

    name: Literal["tensorboard", "csv", "wandb", "mlflow"]
    options: dict[str, Any] = Field(default_factory=dict)


class CallbackConfig(StrictModel):
    """A Lightning callback added to every training stage, as Lightning's own CLI names
    one: an importable class and its keyword arguments.

    Attributes:
        class_path: ``package.module.ClassName`` of a ``lightning.Callback`` subclass.
        init_args: its constructor's keyword arguments.
    """

    class_path: str = Field(pattern=r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
    init_args: dict[str, Any] = Field(default_factory=dict)


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
        loggers: where metrics go (:class:`LoggerConfig`; a name alone, e.g.
            ``[tensorboard, csv, wandb]``); a resumed run may change them.
        callbacks: extra Lightning callbacks (:class:`CallbackConfig`).
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
    loggers: list[LoggerConfig] = Field(
        default_factory=lambda: [LoggerConfig(name="tensorboard"), LoggerConfig(name="csv")]
    )
    callbacks: list[CallbackConfig] = Field(default_factory=list)

    @field_validator("loggers", mode="before")
    @classmethod
    def _bare_logger_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("loggers")
    @classmethod
    def _unique_loggers(cls, value: list[LoggerConfig]) -> list[LoggerConfig]:
        names = [v.name for v in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"each logger at most once, {twice} given twice")
        return value


class EvaluatedStage(StrictModel):
    """The label space of a stage and the sets that validate it.

    Attributes:
        taxonomy: target label space (built-in name or file).
        val: validation sets; see :class:`~labelbridge.config.parts.ValDatasetConfig`.
    """

    taxonomy: str
    val: list[ValDatasetConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_val(self) -> EvaluatedStage:
        unique_report_names(self.val)
        return self

    @property
    def select_index(self) -> int:
        """Index of the model-selection val set (``select: true``, else 0)."""
        return next((i for i, v in enumerate(self.val) if v.select), 0)


class RunSettings(StrictModel):
    """How a stage trains: optimiser, schedule, batches, augmentation, trainer, folder.

    Attributes:
        optimizer: see :class:`OptimizerConfig`.
        schedule: see :class:`ScheduleConfig`.
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        precision: ``32``, ``16-mixed`` or ``bf16-mixed``.
        batch_size: training images per batch and process.
        val_batch_size: validation images per batch and process.
        epochs: maximum epochs (of stage 1 in training).
        steps_per_epoch: optimiser steps per epoch (``None``: the summed dataset sizes
            divided by the global batch size); samples are drawn by the weighted sampler.
        num_workers: data-loading processes per training process.
        seed: seeds Python, numpy and torch (and the samplers).
        augment: see :class:`AugmentConfig`.
        early_stopping: see :class:`EarlyStoppingConfig`.
        trainer: see :class:`TrainerConfig`.
        resize: ``[W, H]``: resize every train and val image (bilinear) and label
            (nearest) before batching; ``None``: keep sizes (a batch of different sizes is
            padded to the largest, labels with ignore).
        output: run folder (checkpoints, logs, metrics); re-running with the same folder
            resumes.
    """

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

    @property
    def output_dir(self) -> Path:
        return Path(self.output)


class StageConfig(RunSettings, EvaluatedStage):
    """The parts of a training-like stage that the training engine reads: its label
    space and validation sets, then its run settings (see the two parts)."""
