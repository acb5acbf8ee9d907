"""Evaluating one model (a checkpoint or a given teacher) on every evaluation set."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from labelbridge.config.pipeline import PipelineConfig
from labelbridge.config.pseudo import TeacherConfig

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- evaluation


def _load_model(checkpoint: str | None, teacher: TeacherConfig | None) -> tuple[Any, Any]:
    """``(model, taxonomy)`` of a checkpoint or of a given teacher config."""
    from labelbridge.models import load_model

    if checkpoint is None and teacher is None:
        raise ValueError("evaluate: give a checkpoint or a teacher")
    loaded = (
        load_model(checkpoint=checkpoint)
        if checkpoint is not None
        else load_model(
            checkpoint=teacher.checkpoint,
            spec=teacher.model,
            weights=teacher.weights,
            taxonomy=teacher.taxonomy,
            what="teacher",
        )
    )
    return loaded.model, loaded.taxonomy


def evaluate_checkpoint(
    cfg: PipelineConfig, *, checkpoint: str | None, teacher: TeacherConfig | None = None
) -> tuple[dict[str, float | None], dict[str, dict[str, float | None]]]:
    """mIoU (and per-class IoU) of one model on every evaluation set.

    Returns:
        ``({label: mIoU}, {label: {class: IoU}})``, values in ``[0, 1]`` or ``None``.
    """
    import torch

    from labelbridge.data import create_dataset
    from labelbridge.evaluation import evaluate_model
    from labelbridge.taxonomy import load_ontology

    model, taxonomy = _load_model(checkpoint, teacher)
    miou: dict[str, float | None] = {}
    per_class: dict[str, dict[str, float | None]] = {}
    with torch.inference_mode():
        for entry in cfg.evaluation_sets:
            dataset = create_dataset(entry.name, entry.root, entry.split, on_error=entry.on_error)
            ontology = load_ontology(entry.ontology) if entry.ontology else None
            metrics = evaluate_model(
                model,
                dataset,
                model_taxonomy=taxonomy,
                ontology=ontology,
                input_size=cfg.eval.input_size,
                batch_size=cfg.eval.batch_size,
                device=cfg.eval.device,
                limit=entry.limit,
                progress=True,
            )
            value = float(metrics.miou)
            miou[entry.report_name] = None if math.isnan(value) else value
            per_class[entry.report_name] = metrics.to_dict()["per_class_iou"]
    return miou, per_class


def file_identity(path: str | None) -> list[Any]:
    if path is None:
        return []
    p = Path(path)
    st = p.stat() if p.exists() else None
    return [str(p.resolve()), st.st_size if st else None, st.st_mtime_ns if st else None]
