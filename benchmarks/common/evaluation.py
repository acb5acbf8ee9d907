"""Evaluation sets of the real-data benchmarks and the scores of a model on them, through
the library's one evaluation of a model on named sets
(:func:`labelbridge.evaluation.evaluate_on_sets`, also behind the pipeline's
:func:`labelbridge.pipeline.evaluate_checkpoint`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common.paths import DATA

if TYPE_CHECKING:
    from benchmarks.common.profiles import Profile
    from labelbridge.config.train import ValDatasetConfig

#: One model's scores: ``{set label: {"mIoU": float in [0, 1] or None, "per_class_iou":
#: {class: IoU or None}}}``.
Scores = dict[str, dict[str, Any]]


def cityscapes_eval_sets(data: Path = DATA, *, limit: int | None = None) -> list[ValDatasetConfig]:
    """The evaluation sets of a model predicting Cityscapes classes: CamVid test projected
    to CamVid-11 (``camvid_test``) and IDD-Lite val projected to IDD level-1
    (``idd_val``), read from ``data/camvid`` and ``data/idd_lite``; ``limit``: images
    per set (``None``: all)."""
    from labelbridge.config.train import ValDatasetConfig

    return [
        ValDatasetConfig(
            reader=reader,
            root=str(data / reader),
            split=split,
            ontology=ontology,
            label=label,
            limit=limit,
        )
        for label, reader, split, ontology in (
            ("camvid_test", "camvid", "test", "camvid11_to_cityscapes"),
            ("idd_val", "idd_lite", "val", "idd_level1_to_cityscapes"),
        )
    ]


def as_scores(
    miou: dict[str, float | None],
    per_class: dict[str, dict[str, float | None]],
    labels: Iterable[str],
) -> Scores:
    """``(miou, per_class)`` of :func:`~labelbridge.evaluation.evaluate_on_sets` (or of the
    pipeline) as :data:`Scores` of the sets ``labels``."""
    return {s: {"mIoU": miou.get(s), "per_class_iou": per_class.get(s, {})} for s in labels}


def evaluate_loaded(
    model: Any, taxonomy: Any, sets: Sequence[ValDatasetConfig], profile: Profile
) -> Scores:
    """Scores of a model in memory on every set, with the profile's evaluation settings
    (its first ``eval_limit`` images per set at ``eval_size``, on its device)."""
    from labelbridge.evaluation import evaluate_on_sets

    limited = [s.model_copy(update={"limit": profile.eval_limit}) for s in sets]
    miou, per_class = evaluate_on_sets(
        model,
        taxonomy,
        limited,
        input_size=profile.eval_size,
        batch_size=4,
        device=profile.device,
    )
    return as_scores(miou, per_class, [s.report_name for s in sets])


def evaluate_checkpoint_file(
    checkpoint: str | Path, sets: Sequence[ValDatasetConfig], profile: Profile
) -> Scores:
    """:func:`evaluate_loaded` of the model of a checkpoint file."""
    from labelbridge.models import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    return evaluate_loaded(loaded.model, loaded.taxonomy, sets, profile)
