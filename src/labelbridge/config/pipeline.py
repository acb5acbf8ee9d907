"""Config of a whole run (``labelbridge pipeline CONFIG.yaml``): teacher -> pseudo-labels
-> student (-> source fine-tune) -> further iterations, in one run folder.

Example (real data, shortened; ``configs/demo.yaml`` is a complete one for the demo world)::

    run_dir: runs/camvid_idd
    taxonomy: camvid11                      # the source (target) label space
    source:                                 # labelled source data (labels: gt)
      - {reader: camvid, root: ../shared/data/camvid, split: train}
    val:                                    # model selection during training
      - {reader: camvid, root: ../shared/data/camvid, split: val, label: camvid_val}
    evaluation:                             # the final table (never trained on)
      - {reader: camvid, root: ../shared/data/camvid, split: test, label: camvid_test}
      - {reader: idd_lite, root: ../shared/data/idd_lite, split: val,
         ontology: idd_level1_to_camvid11, label: idd_val}
    teacher:
      train: {model: {spec: "espnetv2:s=1.0"}, epochs: 100, batch_size: 8}
      # or: checkpoint: teacher.ckpt       (or: model / weights / taxonomy)
    extras:
      - {name: idd_lite, reader: idd_lite, root: ../shared/data/idd_lite,
         split: train, ontology: idd_level1_to_camvid11, weight: 1.0}
    pseudo: {arms: [priors, no_priors], tta: {flip: true, scales: [0.75, 1.0, 1.25]}}
    student: {model: {spec: "espnetv2:s=1.0"}, epochs: 100,
              finetune: {enabled: true, lr_factor: 0.1}}   # default: teacher.train
    iterations: 1

A training section (``teacher.train``, ``student``) takes every key of a training
config (:class:`~labelbridge.config.train.TrainConfig`) except ``taxonomy``,
``datasets``, ``val`` and ``output``, which the pipeline fills in: the teacher trains on
``source``; each student on ``source`` plus the pseudo-labelled ``extras``; both validate
on ``val``. The teacher's ``finetune`` stage is off unless its section turns it on (a
source-only model has nothing to fine-tune back to the source).

Relative paths are resolved against the working directory, as on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from labelbridge.config.base import StrictModel, load_config
from labelbridge.config.parts import (
    DatasetLocation,
    ReaderKey,
    TeacherRef,
    folder_name,
    unique_report_names,
)
from labelbridge.config.pseudo import OutputsConfig, TTAConfig
from labelbridge.config.train import (
    FinetuneConfig,
    TrainConfig,
    TrainDatasetConfig,
    ValDatasetConfig,
)
from labelbridge.constants import SHARD_WAIT_SECONDS

#: Pseudo-labelling arms: with the ontology priors, or without (Naive Student).
ARMS: tuple[str, ...] = ("priors", "no_priors")
Arm = Literal["priors", "no_priors"]
#: What a student learns the extra datasets from (see ``PipelineConfig.targets``).
Target = Literal["hard", "soft", "partial", "hard+partial"]

#: Keys of a training config that the pipeline fills in itself.
PIPELINE_OWNED_TRAIN_KEYS: tuple[str, ...] = ("taxonomy", "datasets", "val", "output")


class TrainingSection(TrainConfig):
    """A training config without the parts the pipeline fills in (see the module doc)."""

    taxonomy: str | None = None  # type: ignore[assignment]
    datasets: list[TrainDatasetConfig] = Field(default_factory=list)  # type: ignore[assignment]
    val: list[ValDatasetConfig] = Field(default_factory=list)  # type: ignore[assignment]
    output: str | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _consistent(self) -> TrainingSection:  # replaces TrainConfig's whole-config check
        owned = [k for k in PIPELINE_OWNED_TRAIN_KEYS if getattr(self, k)]
        if owned:
            raise ValueError(
                f"{owned} are filled in by the pipeline (from 'taxonomy', 'source', 'extras', "
                f"'val' and 'run_dir'); remove them from the training section"
            )
        return self


class PipelineTeacher(TeacherRef):
    """The first teacher: trained here, or given as a model reference
    (:class:`~labelbridge.config.parts.TeacherRef`: ``checkpoint``, or ``model`` +
    ``weights`` + ``taxonomy``, which must be the pipeline's).

    Attributes:
        train: train it on ``source`` (see :class:`TrainingSection`).
    """

    reference_required: ClassVar[bool] = False

    train: TrainingSection | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_teacher_finetune_by_default(cls, data: Any) -> Any:
        # a source-only teacher has nothing to fine-tune back to the source: written out
        # explicitly so that a dumped config means the same when loaded again
        if (
            isinstance(data, dict)
            and isinstance(data.get("train"), dict)
            and "finetune" not in data["train"]
        ):
            data = {**data, "train": {**data["train"], "finetune": {"enabled": False}}}
        return data

    @model_validator(mode="after")
    def _trained_or_given(self) -> PipelineTeacher:
        if (self.train is not None) == self.given:
            raise ValueError(
                "give exactly one of 'train', 'checkpoint', or 'model' (+ 'weights', 'taxonomy')"
            )
        if self.model is not None and self.taxonomy is None:
            raise ValueError("a teacher given as 'model' needs its 'taxonomy'")
        return self


class ExtraDatasetConfig(DatasetLocation, ReaderKey):
    """One extra dataset: pseudo-labelled by the teacher, then trained on by the student
    (``root``, ``split``, ``on_error``, ``limit`` as in
    :class:`~labelbridge.config.parts.DatasetLocation`; ``on_error`` applies to both).

    Attributes:
        name: unique name; the pseudo-label sub-folder.
        reader: reader registry name (``labelbridge datasets list``).
        ontology: mapping (name or file) from the reader's taxonomy to ``taxonomy``.
        weight: sampling weight in student training (see ``TrainDatasetConfig.weight``).
    """

    name: str
    ontology: str
    weight: float = Field(default=1.0, gt=0)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return folder_name(value)


class PipelinePseudoConfig(StrictModel):
    """How extras are pseudo-labelled.

    Attributes:
        arms: which students to train: ``priors`` (the method) and/or ``no_priors``
            (the Naive Student baseline); each arm has its own pseudo-labels and student.
        tta: test-time augmentation (see :class:`~labelbridge.config.pseudo.TTAConfig`).
        outputs: optional outputs (confidence, soft labels, previews).
        device: ``cpu``, ``cuda[:N]`` or ``auto``.
        batch_size: images per forward pass.
        num_workers: decode/encode threads.
        threads: torch intra-op threads (``None``: leave torch's setting).
        shard_wait: seconds a process of a sharded run without a process group (srun or
            torchrun tasks) waits, after its own shard, for the other shards to finish
            before the run goes on; then it stops with an error naming the shards missing.
    """

    arms: list[Arm] = Field(default_factory=lambda: ["priors"], min_length=1)
    tta: TTAConfig = Field(default_factory=TTAConfig)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    device: str = "auto"
    batch_size: int = Field(default=1, ge=1)
    num_workers: int = Field(default=2, ge=0)
    threads: int | None = Field(default=None, ge=1)
    shard_wait: float = Field(default=SHARD_WAIT_SECONDS, gt=0)

    @field_validator("arms")
    @classmethod
    def _unique_arms(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"arms must not repeat, got {value}")
        return value


class EvaluationConfig(StrictModel):
    """How the final table is computed.

    Attributes:
        device: torch device of the evaluation.
        input_size: ``[W, H]`` the models see (``None``: native size).
        batch_size: images per forward pass.
    """

    device: str = "cpu"
    input_size: tuple[int, int] | None = None
    batch_size: int = Field(default=4, ge=1)


class PipelineConfig(StrictModel):
    """Everything ``labelbridge pipeline`` needs (see the module doc).

    Attributes:
        run_dir: the run folder; re-running with the same folder resumes.
        taxonomy: source (target) taxonomy, name or file.
        source: labelled source datasets (``labels`` must be ``gt``).
        val: validation sets used for model selection while training.
        evaluation: sets of the final table (default: ``val``); entries with an
            ``ontology`` are scored through its projection.
        teacher: see :class:`PipelineTeacher`.
        extras: the extra datasets (see :class:`ExtraDatasetConfig`).
        pseudo: see :class:`PipelinePseudoConfig`.
        targets: what the students of each arm learn the extras from, one student per
            target, side by side: ``hard`` (pseudo-labels, the method), ``soft`` (top-k
            soft pseudo-labels; the pseudo-label stages then write them), ``hard+partial``
            (pseudo-labels plus the partial-label loss on the extras' own labels) and
            ``partial`` (the extras' own labels through their mappings, no teacher: one
            student, in round 1). The partial term's settings: ``student.partial_loss``.
            Adding ``soft`` to a run whose pseudo-labels are made changes those stages
            (they must write soft labels too); set ``pseudo.outputs.soft_labels.enabled``
            from the start to keep that option open.
        student: training section of every student (default: ``teacher.train``).
        finetune: fine-tune stage of the students; overrides ``student.finetune``.
        iterations: rounds of pseudo-labelling + student training; in round ``n > 1``
            the student of round ``n - 1`` (of the same arm) is the teacher.
        eval: see :class:`EvaluationConfig`.
        threads: torch intra-op threads for every stage (``None``: leave torch's
            setting). Small models on a shared CPU run much faster with ``1``.
    """

    run_dir: str
    taxonomy: str
    source: list[TrainDatasetConfig] = Field(min_length=1)
    val: list[ValDatasetConfig] = Field(min_length=1)
    evaluation: list[ValDatasetConfig] = Field(default_factory=list)
    teacher: PipelineTeacher
    extras: list[ExtraDatasetConfig] = Field(min_length=1)
    pseudo: PipelinePseudoConfig = Field(default_factory=PipelinePseudoConfig)
    targets: list[Target] = Field(default_factory=lambda: ["hard"], min_length=1)
    student: TrainingSection | None = None
    finetune: FinetuneConfig | None = None
    iterations: int = Field(default=1, ge=1)
    eval: EvaluationConfig = Field(default_factory=EvaluationConfig)
    threads: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        pseudo_sources = [d.reader for d in self.source if d.labels != "gt"]
        if pseudo_sources:
            raise ValueError(f"source datasets must use 'labels: gt'; not so: {pseudo_sources}")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets must not repeat, got {self.targets}")
        names = [e.name for e in self.extras]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"extra dataset names must be unique; repeated: {dup}")
        for group, entries in (("val", self.val), ("evaluation", self.evaluation)):
            unique_report_names(entries, group)
        if self.student is None and self.teacher.train is None:
            raise ValueError(
                "a 'student' training section is needed when the teacher is not trained here"
            )
        return self

    # ------------------------------------------------------------------ derived
    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)

    @property
    def evaluation_sets(self) -> list[ValDatasetConfig]:
        """The sets of the final table: ``evaluation``, else ``val``."""
        return list(self.evaluation or self.val)

    @property
    def student_section(self) -> TrainingSection:
        """The students' training section: ``student``, else the teacher's section with
        the default fine-tune stage; the pipeline's ``finetune`` applied."""
        if self.student is not None:
            section = self.student
        else:
            assert self.teacher.train is not None  # guaranteed by the validator
            section = self.teacher.train.model_copy(update={"finetune": FinetuneConfig()})
        if self.finetune is not None:
            section = section.model_copy(update={"finetune": self.finetune})
        return section

    @property
    def teacher_section(self) -> TrainingSection | None:
        """The teacher's training section (its fine-tune stage is off unless set)."""
        return self.teacher.train


def load_pipeline_config(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    """Load and validate a pipeline config file.

    Raises:
        ConfigError: unknown keys, wrong types or values, naming file, key and line.
    """
    return load_config(PipelineConfig, path, overrides)
