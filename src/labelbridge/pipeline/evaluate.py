"""Evaluating one model (a checkpoint or a given teacher) on every evaluation set."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelbridge.config.pipeline import PipelineConfig
from labelbridge.config.pseudo import TeacherConfig

if TYPE_CHECKING:
    from labelbridge.evaluation import SetScores

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
) -> SetScores:
    """mIoU (and per-class IoU) of one model on every evaluation set of ``cfg``, with the
    settings of ``cfg.eval`` (:func:`labelbridge.evaluation.evaluate_on_sets`).

    Returns:
        ``({label: mIoU}, {label: {class: IoU}})``, values in ``[0, 1]`` or ``None``.
    """
    from labelbridge.evaluation import evaluate_on_sets

    model, taxonomy = _load_model(checkpoint, teacher)
    return evaluate_on_sets(
        model,
        taxonomy,
        cfg.evaluation_sets,
        input_size=cfg.eval.input_size,
        batch_size=cfg.eval.batch_size,
        device=cfg.eval.device,
        progress=True,
    )


def file_identity(path: str | None) -> list[Any]:
    if path is None:
        return []
    p = Path(path)
    st = p.stat() if p.exists() else None
    return [str(p.resolve()), st.st_size if st else None, st.st_mtime_ns if st else None]
