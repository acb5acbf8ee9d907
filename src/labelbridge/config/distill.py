"""Config of a distillation run (``labelbridge distill CONFIG.yaml``).

A large frozen teacher distils into a compact student on a labelled *source* set and
an unlabelled (or differently labelled) *target* set: multi-level knowledge
distillation with domain adaptation (arXiv 2011.08007), plus ontology-constrained
pseudo-labels where a target dataset has ground truth of another taxonomy.

Example (``configs/distill_espnetv2_camvid_idd.yaml``, shortened)::

    taxonomy: cityscapes
    teacher: {model: "espnetv2:s=2.0", weights: ../shared/weights/espnetv2_s_2.0_city_1024x512.pth}
    # or: teacher: {checkpoint: teacher.ckpt}   (a file that carries its taxonomy)
    student: {spec: "espnetv2:s=0.5,background=true", weights: ../shared/weights/espnetv2_s_0.5_city_1024x512.pth}
    source:                       # labels in the taxonomy: gt or a pseudo-label folder
      - {reader: camvid, root: ../shared/data/camvid, split: train, labels: {pseudo: runs/pseudo/camvid}}
    target:                       # labels come from the teacher during training
      - {reader: idd_lite, root: ../shared/data/idd_lite, split: train, ontology: idd_level1_to_cityscapes}
    val:
      - {reader: camvid, root: ../shared/data/camvid, split: val, ontology: camvid11_to_cityscapes}
    losses: {ce_source: 1.0, ce_source_aux: 0.4, kd_final: 1.0, kd_aux: 0.5, feat: 0.0, ce_pseudo: 1.0}
    temperature: 2.0
    output: runs/distill_espnetv2

The dataset, validation, model, optimiser, schedule, augmentation, early-stopping and
trainer sections are the training config's own parts (:mod:`labelbridge.config.run`,
:mod:`labelbridge.config.parts`); the teacher is a model reference as in pseudo-labelling
and the pipeline. Relative paths resolve against the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from labelbridge.config.base import StrictModel, load_config
from labelbridge.config.parts import DatasetLocation, ReadAsItIs, TeacherRef
from labelbridge.config.run import ModelConfig, StageConfig
from labelbridge.config.train import TrainDatasetConfig


class TargetDatasetConfig(DatasetLocation, ReadAsItIs):
    """One target dataset: its images are labelled by the teacher during training
    (``root``, ``split``, ``on_error`` and ``limit`` as in
    :class:`~labelbridge.config.parts.DatasetLocation`).

    Attributes:
        reader: reader registry name.
        ontology: mapping (name or file) from this dataset's taxonomy (extra side) to the
            distillation taxonomy (source side): its ground truth constrains the teacher's
            labels (priors). ``None``: the split's labels are not read; plain argmax.
        weight: relative sampling weight among target datasets.
    """

    ontology: str | None = None
    weight: float = Field(default=1.0, gt=0)


class DistillTeacher(TeacherRef):
    """The frozen teacher: a model reference (:class:`~labelbridge.config.parts.TeacherRef`;
    ``taxonomy`` defaults to the distillation taxonomy and must equal it).

    Attributes:
        input_scale: the teacher sees every batch resized by this factor (its logits
            are resized back): a teacher trained at 1024x512 predicts much better on
            small training crops when they are enlarged to its scale (``2.0``). The
            student is unaffected.
    """

    input_scale: float = Field(default=1.0, gt=0, le=8)

    @model_validator(mode="after")
    def _trained(self) -> DistillTeacher:
        if self.model is not None and self.weights is None:
            raise ValueError(
                "a teacher given as 'model' needs its 'weights' (a random teacher teaches nothing)"
            )
        return self


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


class DistillTaskConfig(StrictModel):
    """What the distillation task computes (the part the loss terms read).

    Attributes:
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
    """

    losses: LossWeights = Field(default_factory=LossWeights)
    temperature: float = Field(default=1.0, gt=0)
    kd_priors: bool = True
    distill_on: Literal["both", "source", "target"] = "both"
    kd_source_agree: bool = False
    pseudo_threshold: float | None = Field(default=None, ge=0, le=1)
    discriminator_width: int = Field(default=64, ge=1)

    def task_settings(self) -> DistillTaskConfig:
        """This part alone (a plain :class:`DistillTaskConfig`)."""
        return DistillTaskConfig.model_validate(
            {k: getattr(self, k) for k in DistillTaskConfig.model_fields}
        )


class DistillConfig(DistillTaskConfig, StageConfig):
    """Everything ``labelbridge distill`` needs: the stage parts
    (:class:`~labelbridge.config.run.StageConfig`: ``taxonomy``, ``val`` and the run
    settings), the task (:class:`DistillTaskConfig`), and the models and data.

    Attributes:
        teacher: see :class:`DistillTeacher`.
        student: the compact model (:class:`~labelbridge.config.run.ModelConfig`).
        source: labelled datasets (``gt`` or pseudo-label folders in ``taxonomy``).
        target: datasets labelled by the teacher during training (may be empty when no
            term needs them: then the KD terms run on source images only).
        target_batch_size: target images per batch and process (``None``: ``batch_size``).
    """

    teacher: DistillTeacher
    student: ModelConfig
    source: list[TrainDatasetConfig] = Field(min_length=1)
    target: list[TargetDatasetConfig] = Field(default_factory=list)
    target_batch_size: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> DistillConfig:
        w = self.losses
        learned = [d.reader for d in self.source if d.soft or d.partial is not None]
        if learned:
            raise ValueError(
                "distillation learns soft targets from its teacher; source entries read "
                f"hard labels ('gt' or '{{pseudo: DIR}}'), not soft or partial ones: {learned}"
            )
        if not self.target and self.distill_on == "target":
            raise ValueError("distill_on: target needs target datasets")
        if not self.target and (w.ce_pseudo > 0 or w.adv > 0):
            raise ValueError(
                "losses.ce_pseudo and losses.adv need target datasets; add 'target' entries or set them to 0"
            )
        return self


def load_distill_config(path: str | Path, overrides: list[str] | None = None) -> DistillConfig:
    """Load and validate a distillation config file.

    Raises:
        ConfigError: unknown keys, wrong types or values, naming file, key and line.
    """
    return load_config(DistillConfig, path, overrides)
