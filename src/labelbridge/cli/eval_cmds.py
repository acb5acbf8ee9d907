"""``labelbridge evaluate``: score a folder of prediction PNGs or a checkpoint on a dataset split."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labelbridge.cli.app import (
    CHECKPOINT_HELP,
    DEVICE_HELP,
    TTA_HELP,
    TTA_SCALES_HELP,
    app,
    emit_json,
    parse_size,
    tta_predictor,
)
from labelbridge.errors import UserError

if TYPE_CHECKING:  # torch is imported only when the command runs
    from labelbridge.evaluation import SegmentationMetrics


def format_metrics(metrics: SegmentationMetrics) -> str:
    """A per-class table (IoU and accuracy in %) followed by mIoU and pixel accuracy."""
    names = metrics.names()
    width = max([len(n) for n in names] + [5])

    def pct(value: float) -> str:
        return "    -" if math.isnan(value) else f"{100 * value:5.1f}"

    lines = [f"{'class':<{width}}    IoU    acc"]
    for name, iou, acc in zip(
        names, metrics.per_class_iou, metrics.per_class_accuracy, strict=True
    ):
        lines.append(f"{name:<{width}}  {pct(iou)}  {pct(acc)}")
    lines.append("-" * (width + 15))
    lines.append(f"{'mIoU':<{width}}  {pct(metrics.miou)}")
    lines.append(f"{'pixel acc':<{width}}  {pct(metrics.pixel_accuracy)}")
    lines.append(
        f"({metrics.num_pixels} evaluated pixels; '-' = class absent from ground truth and prediction)"
    )
    return "\n".join(lines)


@app.command("evaluate")
def evaluate_cmd(
    dataset: str = typer.Option(
        ..., "--dataset", help="Dataset reader name (see 'labelbridge datasets list')."
    ),
    root: Path | None = typer.Option(
        None, "--root", help="Dataset root folder (default: $LABELBRIDGE_DATA/<dataset>)."
    ),
    split: str = typer.Option(..., "--split", help="Split to evaluate on, e.g. val or test."),
    pred: Path | None = typer.Option(
        None,
        "--pred",
        help="Folder of prediction PNGs, <pred>/<sample key>.png, holding train ids.",
    ),
    pred_ids: str = typer.Option(
        "train",
        "--pred-ids",
        help="What the prediction PNGs hold: 'train' ids of the prediction taxonomy, or its raw "
        "'label' ids (the Cityscapes benchmark's *_labelIds format; ignored classes = misses).",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=0,
        help="Threads reading and counting prediction/label pairs (--pred; default: the CPUs, "
        "at most 4; 0 = none). The scores do not depend on it.",
    ),
    pred_taxonomy: str | None = typer.Option(
        None,
        "--pred-taxonomy",
        help="Taxonomy of the prediction PNGs (default: the ontology's source, else the dataset's taxonomy).",
    ),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help=f"Model to run instead of --pred: {CHECKPOINT_HELP}."
    ),
    input_size: str | None = typer.Option(
        None, "--input-size", help="Resize images to WxH for the model; logits are resized back."
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP + " (--checkpoint)"),
    tta: bool = typer.Option(False, "--tta", help=TTA_HELP + " (--checkpoint)"),
    tta_scales: str | None = typer.Option(None, "--tta-scales", help=TTA_SCALES_HELP),
    batch_size: int = typer.Option(
        1, "--batch-size", min=1, help="Images per forward pass (--checkpoint)."
    ),
    ontology: str | None = typer.Option(
        None,
        "--ontology",
        help="Mapping (file or built-in name) <dataset taxonomy>_to_<prediction taxonomy>; predictions "
        "are projected into the dataset's taxonomy (no counterpart = miss).",
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Evaluate only the first N samples."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Per-class IoU, mIoU (over classes present in ground truth or prediction, as the
    Cityscapes scripts) and pixel accuracy of predictions on a dataset split."""
    from labelbridge.data import create_dataset
    from labelbridge.evaluation import evaluate_model, evaluate_prediction_folder
    from labelbridge.evaluation.model_eval import PRED_ID_KINDS
    from labelbridge.taxonomy import load_ontology, load_taxonomy

    if (pred is None) == (checkpoint is None):
        raise UserError("give exactly one of --pred DIR or --checkpoint FILE")
    if pred is not None and (
        input_size is not None or batch_size != 1 or tta or tta_scales is not None
    ):
        raise UserError("--input-size, --batch-size and --tta apply to --checkpoint only")
    if checkpoint is not None and (pred_ids != "train" or workers is not None):
        raise UserError("--pred-ids and --workers apply to --pred only")
    if pred_ids not in PRED_ID_KINDS:
        raise UserError(f"--pred-ids must be one of {', '.join(PRED_ID_KINDS)}, got {pred_ids!r}")
    if checkpoint is not None and pred_taxonomy is not None:
        raise UserError(
            "--pred-taxonomy applies to --pred only (a checkpoint carries its taxonomy)"
        )
    reader = create_dataset(dataset, root, split)
    onto = load_ontology(ontology) if ontology else None
    show_progress = not as_json
    if pred is not None:
        if pred_taxonomy is not None:
            tax = load_taxonomy(pred_taxonomy)
        else:
            tax = onto.source if onto is not None else reader.taxonomy
        metrics = evaluate_prediction_folder(
            pred,
            reader,
            pred_taxonomy=tax,
            ontology=onto,
            limit=limit,
            progress=show_progress,
            pred_ids=pred_ids,
            workers=workers,
        )
        what = str(pred)
    else:
        from labelbridge.models import load_checkpoint
        from labelbridge.models.device import resolve_device

        loaded = load_checkpoint(checkpoint)
        predictor = tta_predictor(
            loaded.model, loaded.taxonomy.num_classes, tta=tta, scales=tta_scales
        )
        metrics = evaluate_model(
            loaded.model,
            reader,
            model_taxonomy=loaded.taxonomy,
            ontology=onto,
            input_size=parse_size(input_size),
            batch_size=batch_size,
            device=resolve_device(device),
            limit=limit,
            progress=show_progress,
            tta=predictor,
        )
        what = str(checkpoint)
    count = len(reader) if limit is None else min(limit, len(reader))
    if as_json:
        emit_json(
            {
                "predictions": what,
                "dataset": dataset,
                "split": split,
                "samples": count,
                "taxonomy": reader.taxonomy.name,
                "ontology": onto.origin if onto is not None else None,
                **metrics.to_dict(),
            }
        )
        return
    print(f"{what} on {dataset}/{split} ({count} samples, taxonomy {reader.taxonomy.name})")
    print(format_metrics(metrics))
