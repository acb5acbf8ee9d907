"""Config of a training run (``labelbridge train CONFIG.yaml``): teachers and students.

Example (``configs/student_camvid_idd.yaml``, shortened)::

    taxonomy: camvid11                  # the target label space
    datasets:
      - {reader: camvid, root: ../shared/data/camvid, split: train, labels: gt, weight: 1.0}
      - {reader: idd_lite, root: ../shared/data/idd_lite, split: train,
         labels: {pseudo: runs/pseudo/idd_lite}, weight: 0.5}
    val:
      - {reader: camvid, root: ../shared/data/camvid, split: val, label: camvid}
      - {reader: idd_lite, root: ../shared/data/idd_lite, split: val,
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

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from labelbridge.config.base import StrictModel, load_config
from labelbridge.config.parts import DatasetRef, ValDatasetConfig
from labelbridge.config.run import (
    AugmentConfig,
    ColorJitterConfig,
    EarlyStoppingConfig,
    FinetuneConfig,
    ModelConfig,
    OptimizerConfig,
    ScheduleConfig,
    StageConfig,
    TrainerConfig,
)

__all__ = [
    "AugmentConfig",
    "ColorJitterConfig",
    "EarlyStoppingConfig",
    "FinetuneConfig",
    "ModelConfig",
    "OptimizerConfig",
    "PartialLossConfig",
    "PseudoLabels",
    "ScheduleConfig",
    "TrainConfig",
    "TrainDatasetConfig",
    "TrainerConfig",
    "ValDatasetConfig",
    "load_train_config",
]


class PseudoLabels(StrictModel):
    """Labels other than the reader's own, in the target taxonomy: pseudo-labels, soft
    pseudo-labels, partial labels, or hard pseudo-labels plus partial labels.

    Attributes:
        pseudo: pseudo-label folder (``<pseudo>/<sample key>.png``, target train ids,
            with ``<pseudo>/pseudo_labels.yaml`` naming their taxonomy).
        soft: train on the folder's top-k soft labels (``<key>_soft.npz``, written by
            ``pseudo-label`` with ``outputs.soft_labels.enabled``) instead of its PNGs.
        partial: mapping (name or file) from the reader's taxonomy to the target
            taxonomy: the reader's own labels are read as the sets of target classes
            each pixel may be, for the partial-label loss (with ``pseudo``: both terms).
    """

    pseudo: str | None = None
    soft: bool = False
    partial: str | None = None

    @model_validator(mode="after")
    def _some_source(self) -> PseudoLabels:
        if self.pseudo is None and self.partial is None:
            raise ValueError(
                "give 'pseudo' (a pseudo-label folder), 'partial' (a mapping), or both"
            )
        if self.soft and self.pseudo is None:
            raise ValueError(
                "'soft: true' reads the soft labels of a 'pseudo' folder; give 'pseudo'"
            )
        return self


class TrainDatasetConfig(DatasetRef):
    """One training dataset (reader, ``root``, ``split``, ``on_error`` and ``limit`` as in
    :class:`~labelbridge.config.parts.DatasetRef`).

    Attributes:
        labels: ``gt`` (the reader's own labels; its taxonomy must be the target
            taxonomy), or :class:`PseudoLabels`: ``{pseudo: DIR}`` (hard pseudo-labels),
            ``{pseudo: DIR, soft: true}`` (soft pseudo-labels), ``{partial: MAPPING}``
            (the reader's labels as sets of target classes) or ``{pseudo: DIR, partial:
            MAPPING}`` (hard pseudo-labels plus the partial-label term).
        weight: relative sampling weight; a batch element comes from this dataset with
            probability ``weight / sum(weights)``, whatever the dataset's size.
        source: part of the source data used by the fine-tune stage (default: every
            ``labels: gt`` entry when no entry sets it).
    """

    labels: Literal["gt"] | PseudoLabels = "gt"
    weight: float = Field(default=1.0, gt=0)
    source: bool | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _one_label_source(cls, value: object) -> object:
        """One message for a wrong ``labels`` (not one per form it could have taken)."""
        if isinstance(value, dict):
            try:
                return PseudoLabels.model_validate(value)
            except ValidationError as exc:
                problems = "; ".join(
                    (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
                    + str(e["msg"]).removeprefix("Value error, ")
                    for e in exc.errors()
                )
                raise ValueError(problems) from None
        if value != "gt" and not isinstance(value, PseudoLabels):
            raise ValueError(
                f"labels must be 'gt' or a mapping such as {{pseudo: DIR}}, {{pseudo: DIR, "
                f"soft: true}}, {{partial: MAPPING}}; got {value!r}"
            )
        return value

    @property
    def pseudo_dir(self) -> Path | None:
        """The pseudo-label folder, if the entry reads one."""
        if isinstance(self.labels, PseudoLabels) and self.labels.pseudo is not None:
            return Path(self.labels.pseudo)
        return None

    @property
    def soft(self) -> bool:
        """Whether the entry trains on soft pseudo-labels."""
        return isinstance(self.labels, PseudoLabels) and self.labels.soft

    @property
    def partial(self) -> str | None:
        """The mapping of the entry's partial labels, if it has them."""
        return self.labels.partial if isinstance(self.labels, PseudoLabels) else None


class PartialLossConfig(StrictModel):
    """The partial-label term (entries with ``labels: {partial: MAPPING}``).

    Attributes:
        weight: weight of the term against the hard and soft cross-entropies.
        void_option: mapping rows that list ``ignore`` beside their classes: ``allowed``
            trains their pixels towards the listed classes, ``ignore`` leaves them out
            (see :mod:`labelbridge.taxonomy.partial`).
    """

    weight: float = Field(default=1.0, gt=0)
    void_option: Literal["allowed", "ignore"] = "allowed"


class TrainConfig(StageConfig):
    """Everything ``labelbridge train`` needs: the stage parts
    (:class:`~labelbridge.config.run.StageConfig`: ``taxonomy``, ``val`` and the run
    settings) plus what to train on.

    Attributes:
        datasets: training datasets; see :class:`TrainDatasetConfig`.
        model: see :class:`~labelbridge.config.run.ModelConfig`.
        finetune: see :class:`~labelbridge.config.run.FinetuneConfig`.
        partial_loss: see :class:`PartialLossConfig`.
    """

    datasets: list[TrainDatasetConfig] = Field(min_length=1)
    model: ModelConfig
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    partial_loss: PartialLossConfig = Field(default_factory=PartialLossConfig)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.finetune.enabled and not self.source_datasets:
            raise ValueError(
                "finetune.enabled needs source datasets: an entry with 'source: true' or 'labels: gt'"
            )
        return self

    @property
    def source_datasets(self) -> list[TrainDatasetConfig]:
        """Datasets of the fine-tune stage: ``source: true`` entries, else ``labels: gt`` ones."""
        flagged = [d for d in self.datasets if d.source]
        if flagged:
            return flagged
        return [d for d in self.datasets if d.labels == "gt" and d.source is not False]


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load and validate a training config file.

    Raises:
        ConfigError: unknown keys, wrong types or values, naming file, key and line.
    """
    return load_config(TrainConfig, path, overrides)
