"""The stages of a pipeline config, in order (the single source of stage names), and the
configs each stage runs with."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelbridge.config.parts import DatasetLocation
from labelbridge.config.pipeline import PipelineConfig, TrainingSection
from labelbridge.config.pseudo import DatasetEntry, PseudoLabelConfig, TeacherConfig
from labelbridge.config.train import TrainConfig, TrainDatasetConfig, ValDatasetConfig
from labelbridge.errors import CheckpointError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- plan


#: Sub-folder suffix of a student per target (``hard`` keeps the plain arm name).
TARGET_SUFFIX = {"hard": "", "soft": "_soft", "hard+partial": "_hard_partial"}
#: The student that learns from the extras' own labels alone (no teacher, no arm).
PARTIAL_STUDENT = "student_partial"


@dataclass(frozen=True)
class Stage:
    """One step of the run.

    Attributes:
        name: key in ``state.json`` and sub-folder of the run (``iter1/student_priors``).
        kind: ``train_teacher``, ``pseudo``, ``train_student`` or ``evaluate``.
        iteration: round (0 for the teacher).
        arm: ``priors`` / ``no_priors`` (``None`` for the teacher and the partial-label
            student).
        target: what a student learns the extras from (``hard``, ``soft``, ``partial``,
            ``hard+partial``); ``None`` for other stages.
    """

    name: str
    kind: str
    iteration: int
    arm: str | None = None
    target: str | None = None


def plan_stages(cfg: PipelineConfig) -> list[Stage]:
    """The stages of a run in execution order (evaluations excluded): the teacher; per
    round and arm the pseudo-labels and one student per target; the partial-label
    student (it needs no teacher) once, in round 1."""
    stages = []
    if cfg.teacher.train is not None:
        stages.append(Stage("teacher", "train_teacher", 0))
    with_teacher = [t for t in cfg.targets if t != "partial"]
    for it in range(1, cfg.iterations + 1):
        if it == 1 and "partial" in cfg.targets:
            stages.append(Stage(f"iter1/{PARTIAL_STUDENT}", "train_student", 1, None, "partial"))
        for arm in cfg.pseudo.arms if with_teacher else []:
            stages.append(Stage(f"iter{it}/pseudo_{arm}", "pseudo", it, arm))
            for target in with_teacher:
                name = f"iter{it}/student_{arm}{TARGET_SUFFIX[target]}"
                stages.append(Stage(name, "train_student", it, arm, target))
    return stages


def lead_target(cfg: PipelineConfig) -> str | None:
    """The target whose student teaches its arm's next round: ``hard`` when it is one of
    the targets, else the first target that has a teacher (``None``: ``partial`` only)."""
    with_teacher = [t for t in cfg.targets if t != "partial"]
    return "hard" if "hard" in with_teacher else (with_teacher[0] if with_teacher else None)


# --------------------------------------------------------------------------- builders


def build_train_config(
    section: TrainingSection,
    *,
    taxonomy: str,
    datasets: list[TrainDatasetConfig],
    val: list[ValDatasetConfig],
    output: Path,
) -> TrainConfig:
    """A complete training config from a pipeline training section."""
    data = section.model_dump(mode="json", exclude={"taxonomy", "datasets", "val", "output"})
    data.update(
        taxonomy=taxonomy,
        datasets=[d.model_dump(mode="json") for d in datasets],
        val=[v.model_dump(mode="json") for v in val],
        output=str(output),
    )
    return TrainConfig.model_validate(data)


def location(entry: DatasetLocation) -> dict[str, Any]:
    """The location part of a dataset entry (root, split, on_error, limit), to build
    another entry of the same data."""
    return {k: getattr(entry, k) for k in DatasetLocation.model_fields}


def student_datasets(
    cfg: PipelineConfig, pseudo_dir: Path | None, target: str = "hard"
) -> list[TrainDatasetConfig]:
    """Source datasets (ground truth) plus every extra read as ``target`` says: its hard
    or soft pseudo-labels (in ``pseudo_dir``), its own labels as partial labels through
    its mapping, or hard pseudo-labels plus partial labels."""
    out = [d.model_copy() for d in cfg.source]
    for extra in cfg.extras:
        labels: dict[str, Any] = {}
        if target != "partial":
            assert pseudo_dir is not None
            labels["pseudo"] = str(pseudo_dir / extra.name)
        if target == "soft":
            labels["soft"] = True
        if target in ("partial", "hard+partial"):
            labels["partial"] = extra.ontology
        out.append(
            TrainDatasetConfig(
                reader=extra.reader,
                **location(extra),
                labels=labels,
                weight=extra.weight,
                source=False,
            )
        )
    return out


def build_pseudo_config(
    cfg: PipelineConfig, teacher: TeacherConfig, *, priors: bool, output: Path
) -> PseudoLabelConfig:
    """The pseudo-labelling config of one arm of one round."""
    outputs = cfg.pseudo.outputs
    if "soft" in cfg.targets and not outputs.soft_labels.enabled:  # soft students read them
        soft = outputs.soft_labels.model_copy(update={"enabled": True})
        outputs = outputs.model_copy(update={"soft_labels": soft})
    return PseudoLabelConfig(
        teacher=teacher,
        datasets=[
            DatasetEntry(name=e.name, reader=e.reader, ontology=e.ontology, **location(e))
            for e in cfg.extras
        ],
        tta=cfg.pseudo.tta,
        priors=priors,
        outputs=outputs,
        output=str(output),
        device=cfg.pseudo.device,
        batch_size=cfg.pseudo.batch_size,
        num_workers=cfg.pseudo.num_workers,
        threads=cfg.pseudo.threads,
    )


def given_teacher(cfg: PipelineConfig) -> TeacherConfig | None:
    """The pseudo-labelling teacher of round 1 when the pipeline is given one."""
    t = cfg.teacher
    return TeacherConfig(**t.describe()) if t.given else None


def train_checkpoint(result: Any, stage: str) -> str:
    """The model a training run delivers: its final checkpoint (the best checkpoint of
    its last stage, i.e. of the fine-tune stage where there is one)."""
    for attr in ("final_checkpoint", "best_checkpoint"):
        path = getattr(result, attr, None)
        if path:
            return str(path)
    raise CheckpointError(f"training stage {stage!r} returned no checkpoint")
