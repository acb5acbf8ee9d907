"""Config of a distillation run (``labelbridge distill CONFIG.yaml``).

A large frozen teacher distils into a compact student on a labelled *source* set and
an unlabelled (or differently labelled) *target* set: multi-level knowledge
distillation with domain adaptation (arXiv 2011.08007), plus ontology-constrained
pseudo-labels where a target dataset has ground truth of another taxonomy.

Example (``configs/distill_espnetv2_camvid_idd.yaml``, shortened)::

    taxonomy: cityscapes
    teacher: {spec: "espnetv2:s=2.0", weights: ../shared/weights/espnetv2_s_2.0_city_1024x512.pth}
    student: {spec: "espnetv2:s=0.5,background=true", weights: ../shared/weights/espnetv2_s_0.5_city_1024x512.pth}
    source:                       # labels in the taxonomy: gt or a pseudo-label folder
      - {name: camvid, root: ../shared/data/camvid, split: train, labels: {pseudo: runs/pseudo/camvid}}
    target:                       # labels come from the teacher during training
      - {name: idd_lite, root: ../shared/data/idd_lite, split: train, ontology: idd_level1_to_cityscapes}
    val:
      - {name: camvid, root: ../shared/data/camvid, split: val, ontology: camvid11_to_cityscapes}
    losses: {ce_source: 1.0, ce_source_aux: 0.4, kd_final: 1.0, kd_aux: 0.5, feat: 0.0, ce_pseudo: 1.0}
    temperature: 2.0
    output: runs/distill_espnetv2

The dataset, validation, model, optimiser, schedule, augmentation, early-stopping and
trainer sections are the training config's own models
(:mod:`labelbridge.config.train`). Relative paths resolve against the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from labelbridge.config.base import StrictModel, load_config
from labelbridge.config.train import (
    AugmentConfig,
    EarlyStoppingConfig,
    FinetuneConfig,
    ModelConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    TrainDatasetConfig,
    TrainerConfig,
    ValDatasetConfig,
)


class TargetDatasetConfig(StrictModel):
    """One target dataset: its images are labelled by the teacher during training.

    Attributes:
        name: reader registry name.
        root: dataset root, or ``None`` for ``$LABELBRIDGE_DATA/<name>``.
        split: split name.
        ontology: mapping (name or file) from this dataset's taxonomy (extra side) to the
            distillation taxonomy (source side): its ground truth constrains the teacher's
            labels (priors). ``None``: the split's labels are not read; plain argmax.
        weight: relative sampling weight among target datasets.
        on_error: ``raise`` on a bad file, or ``skip`` it.
        limit: only the first ``limit`` samples.
    """

    name: str
    root: str | None = None
    split: str = "train"
    ontology: str | None = None
    weight: float = Field(default=1.0, gt=0)
    on_error: Literal["raise", "skip"] = "raise"
    limit: int | None = Field(default=None, ge=1)


class TeacherConfig(StrictModel):
    """The frozen teacher.

    Attributes:
        spec: model spec (``"espnetv2:s=2.0"``), or ``None`` to take it from a labelbridge
            checkpoint in ``weights``.
        weights: a labelbridge checkpoint or a file the model recognises (required: a
            randomly initialised teacher teaches nothing).
        input_scale: the teacher sees every batch resized by this factor (its logits
            are resized back): a teacher trained at 1024x512 predicts much better on
            small training crops when they are enlarged to its scale (``2.0``). The
            student is unaffected.
    """

    spec: str | None = None
    weights: str
    input_scale: float = Field(default=1.0, gt=0, le=8)


class LossWeights(StrictModel):
    """Weights of the loss terms (0 switches a term off; it is then not computed).

    Attributes:
        ce_source: CE on source labels at the final output.
        ce_source_aux: CE on source labels at the student's intermediate head.
        kd_final: ``T^2``-scaled KL(teacher || student) at the final output.
        kd_aux: the same at the intermediate head.
        feat: MSE between intermediate feature maps (1x1 conv adapter where widths differ).
        ce_pseudo: CE against the teacher's (ontology-constrained) labels on target images.
        adv: AdaptSegNet output-space adversarial loss of the student on target images.
        disc: the discriminator's loss (only with ``adv > 0``); scales its learning rate.
    """

    ce_source: float = Field(default=1.0, ge=0)
    ce_source_aux: float = Field(default=0.4, ge=0)
    kd_final: float = Field(default=1.0, ge=0)
    kd_aux: float = Field(default=0.5, ge=0)
    feat: float = Field(default=0.0, ge=0)
    ce_pseudo: float = Field(default=1.0, ge=0)
    adv: float = Field(default=0.0, ge=0)
    disc: float = Field(default=1.0, ge=0)


class DistillConfig(StrictModel):
    """Everything ``labelbridge distill`` needs.

    Attributes:
        taxonomy: label space of teacher and student (built-in name or file).
        teacher: see :class:`TeacherConfig`.
        student: the compact model (:class:`~labelbridge.config.train.ModelConfig`).
        source: labelled datasets (``gt`` or pseudo-label folders in ``taxonomy``).
        target: datasets labelled by the teacher during training (may be empty when no
            term needs them: then the KD terms run on source images only).
        val: validation sets, as in training.
        losses: see :class:`LossWeights`.
        temperature: KD temperature ``T > 0``.
        kd_priors: on target images of a dataset with an ontology, restrict the teacher's
            soft labels to the classes each pixel's ground truth allows (renormalised),
            as the priors do for the hard pseudo-labels; ``false``: distil the teacher's
            unconstrained distribution there.
        distill_on: the images the KD and feature-matching terms use: ``both`` (source
            and target batches), ``source`` or ``target`` only.
        kd_source_agree: on source images, distil only the pixels where the teacher's
            argmax equals the source label (where they disagree the label corrects the
            teacher, e.g. prior-corrected pseudo-labels, and the teacher's distribution
            would teach the error back).
        pseudo_threshold: target pixels whose teacher confidence (renormalised over the
            allowed classes) is below this become ignore; ``None``: keep all.
        discriminator_width: first-layer channels of the discriminator.
        batch_size: source images per batch and process.
        target_batch_size: target images per batch and process (``None``: ``batch_size``).
        resize: ``[W, H]`` every image is resized to before batching, or ``None``.
        output: run folder; re-running with the same folder resumes.

    The remaining fields mean what they mean in
    :class:`~labelbridge.config.train.TrainConfig`.
    """

    taxonomy: str
    teacher: TeacherConfig
    student: ModelConfig
    source: list[TrainDatasetConfig] = Field(min_length=1)
    target: list[TargetDatasetConfig] = Field(default_factory=list)
    val: list[ValDatasetConfig] = Field(min_length=1)
    losses: LossWeights = Field(default_factory=LossWeights)
    temperature: float = Field(default=1.0, gt=0)
    kd_priors: bool = True
    distill_on: Literal["both", "source", "target"] = "both"
    kd_source_agree: bool = False
    pseudo_threshold: float | None = Field(default=None, ge=0, le=1)
    discriminator_width: int = Field(default=64, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    grad_clip: float | None = Field(default=None, gt=0)
    precision: Literal["32", "16-mixed", "bf16-mixed"] = "32"
    batch_size: int = Field(default=8, ge=1)
    target_batch_size: int | None = Field(default=None, ge=1)
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

    @model_validator(mode="before")
    @classmethod
    def _precision_text(cls, data: object) -> object:
        if (
            isinstance(data, dict)
            and isinstance(data.get("precision"), int)
            and not isinstance(data["precision"], bool)
        ):
            data = {**data, "precision": str(data["precision"])}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DistillConfig:
        names = [v.report_name for v in self.val]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(
                f"val report names must be unique (give each a 'label'); repeated: {dup}"
            )
        if sum(v.select for v in self.val) > 1:
            raise ValueError("at most one val entry may set 'select: true'")
        w = self.losses
        if not self.target and self.distill_on == "target":
            raise ValueError("distill_on: target needs target datasets")
        if not self.target and (w.ce_pseudo > 0 or w.adv > 0):
            raise ValueError(
                "losses.ce_pseudo and losses.adv need target datasets; add 'target' entries or set them to 0"
            )
        if self.resize is not None and min(self.resize) < 1:
            raise ValueError(f"resize must be [W, H] with positive sides, got {list(self.resize)}")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def select_index(self) -> int:
        """Index of the model-selection val set (``select: true``, else 0)."""
        return next((i for i, v in enumerate(self.val) if v.select), 0)

    @property
    def output_dir(self) -> Path:
        return Path(self.output)

    def student_train_config(self) -> TrainConfig:
        """The training config of the student alone (source datasets, no teacher, no
        fine-tune stage): used to validate exported students with the training engine."""
        return TrainConfig(
            taxonomy=self.taxonomy,
            datasets=self.source,
            val=self.val,
            model=self.student,
            optimizer=self.optimizer,
            schedule=self.schedule,
            grad_clip=self.grad_clip,
            precision=self.precision,
            batch_size=self.batch_size,
            val_batch_size=self.val_batch_size,
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            num_workers=self.num_workers,
            seed=self.seed,
            augment=self.augment,
            early_stopping=self.early_stopping,
            finetune=FinetuneConfig(enabled=False),
            trainer=self.trainer,
            resize=self.resize,
            output=self.output,
        )


def load_distill_config(path: str | Path, overrides: list[str] | None = None) -> DistillConfig:
    """Load and validate a distillation config file.

    Raises:
        ConfigError: unknown keys, wrong types or values, naming file, key and line.
    """
    return load_config(DistillConfig, path, overrides)
