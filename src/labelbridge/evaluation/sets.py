"""Evaluate one model on several named evaluation sets: the pipeline's final table
(:func:`labelbridge.pipeline.evaluate_checkpoint`) and the real-data benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labelbridge.config.train import ValDatasetConfig
    from labelbridge.taxonomy import Taxonomy

#: ``{set label: mIoU}`` and ``{set label: {class: IoU}}``, values in ``[0, 1]`` or ``None``.
SetScores = tuple[dict[str, float | None], dict[str, dict[str, float | None]]]


def evaluate_on_sets(
    model: Any,
    taxonomy: Taxonomy,
    sets: Sequence[ValDatasetConfig],
    *,
    input_size: tuple[int, int] | None = None,
    batch_size: int = 4,
    device: str = "cpu",
    progress: bool = False,
) -> SetScores:
    """mIoU (and per-class IoU) of one model on every evaluation set.

    Args:
        model: the model, its outputs the train ids of ``taxonomy``.
        taxonomy: the model's taxonomy.
        sets: the evaluation sets: reader ``name``, ``root``, ``split``, ``on_error``,
            ``limit``, ``ontology`` (predictions projected through it) and the report
            name (``label``, default ``name``) each result is keyed by.
        input_size: ``(W, H)`` the model sees (``None``: native size).
        batch_size: images per forward pass.
        device: torch device.
        progress: show a progress bar per set.

    Returns:
        ``({label: mIoU}, {label: {class: IoU}})``, values in ``[0, 1]``; ``None`` where
        no class of a set occurs (mIoU) or a class occurs nowhere (IoU).
    """
    import torch

    from labelbridge.data import create_dataset
    from labelbridge.evaluation.model_eval import evaluate_model
    from labelbridge.taxonomy import load_ontology

    miou: dict[str, float | None] = {}
    per_class: dict[str, dict[str, float | None]] = {}
    with torch.inference_mode():
        for entry in sets:
            dataset = create_dataset(entry.reader, entry.root, entry.split, on_error=entry.on_error)
            metrics = evaluate_model(
                model,
                dataset,
                model_taxonomy=taxonomy,
                ontology=load_ontology(entry.ontology) if entry.ontology else None,
                input_size=input_size,
                batch_size=batch_size,
                device=device,
                limit=entry.limit,
                progress=progress,
            )
            value = float(metrics.miou)
            miou[entry.report_name] = None if math.isnan(value) else value
            per_class[entry.report_name] = metrics.to_dict()["per_class_iou"]
    return miou, per_class
