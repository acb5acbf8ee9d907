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


@dataclass(frozen=True)
class Stage:
    """One step of the run.

    Attributes:
        name: key in ``state.json`` and sub-folder of the run (``iter1/student_priors``).
        kind: ``train_teacher``, ``pseudo``, ``train_student`` or ``evaluate``.
        iteration: round (0 for the teacher).
        arm: ``priors`` / ``no_priors`` (``None`` for the teacher).
    """

    name: str
    kind: str
    iteration: int
    arm: str | None = None


def plan_stages(cfg: PipelineConfig) -> list[Stage]:
    """The stages of a run in execution order (evaluations excluded)."""
    stages = []
    if cfg.teacher.train is not None:
        stages.append(Stage("teacher", "train_teacher", 0))
    for it in range(1, cfg.iterations + 1):
        for arm in cfg.pseudo.arms:
            stages.append(Stage(f"iter{it}/pseudo_{arm}", "pseudo", it, arm))
            stages.append(Stage(f"iter{it}/student_{arm}", "train_student", it, arm))
    return stages


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


def student_datasets(cfg: PipelineConfig, pseudo_dir: Path) -> list[TrainDatasetConfig]:
    """Source datasets (ground truth) plus every extra read with its pseudo-labels."""
    out = [d.model_copy() for d in cfg.source]
    for extra in cfg.extras:
        out.append(
            TrainDatasetConfig(
                reader=extra.reader,
                **location(extra),
                labels={"pseudo": str(pseudo_dir / extra.name)},
                weight=extra.weight,
                source=False,
            )
        )
    return out


def build_pseudo_config(
    cfg: PipelineConfig, teacher: TeacherConfig, *, priors: bool, output: Path
) -> PseudoLabelConfig:
    """The pseudo-labelling config of one arm of one round."""
    return PseudoLabelConfig(
        teacher=teacher,
        datasets=[
            DatasetEntry(name=e.name, reader=e.reader, ontology=e.ontology, **location(e))
            for e in cfg.extras
        ],
        tta=cfg.pseudo.tta,
        priors=priors,
        outputs=cfg.pseudo.outputs,
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
