"""``labelbridge models list|import`` and ``labelbridge predict``."""

from __future__ import annotations

from pathlib import Path

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

models_app = typer.Typer(
    help="List zoo models and import published checkpoints.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(models_app, name="models")

#: Classes assumed when counting parameters for ``models list`` (Cityscapes).
LIST_NUM_CLASSES = 19


@models_app.command("list")
def models_list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    num_classes: int = typer.Option(
        LIST_NUM_CLASSES, "--num-classes", help="Classes for the parameter counts."
    ),
) -> None:
    """List the zoo's model specs with parameter counts (for --num-classes outputs)."""
    from labelbridge.models import MODELS, count_parameters

    rows = []
    for name, entry in MODELS.items():
        for spec in entry.examples:
            rows.append(
                {"spec": spec, "family": name, "parameters": count_parameters(spec, num_classes)}
            )
        if not entry.examples:
            rows.append({"spec": f"{name}:<...>", "family": name, "parameters": None})
    if as_json:
        emit_json(
            {
                "num_classes": num_classes,
                "models": rows,
                "families": {n: e.summary for n, e in MODELS.items()},
            }
        )
        return
    width = max(len(r["spec"]) for r in rows)
    print(f"{'spec':<{width}}  {'parameters':>12}")
    for r in rows:
        count = "-" if r["parameters"] is None else f"{r['parameters']:,}"
        print(f"{r['spec']:<{width}}  {count:>12}")
    print()
    for n, e in MODELS.items():
        print(f"{n}: {e.summary}")


@models_app.command("import")
def models_import_cmd(
    source: Path = typer.Argument(
        ..., help="Published state-dict file (e.g. espnetv2_s_2.0_city_1024x512.pth)."
    ),
    out: Path = typer.Option(..., "--out", help="labelbridge checkpoint to write."),
    spec: str = typer.Option(
        None, "--spec", help="Model spec; inferred for published ESPNetv2 files."
    ),
    taxonomy: str = typer.Option(
        "cityscapes", "--taxonomy", help="Taxonomy (name or YAML) of the outputs."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Write a self-contained labelbridge checkpoint (model spec + taxonomy) from a
    published state dict, loading it strictly."""
    from labelbridge.models import import_state_dict, save_checkpoint

    loaded = import_state_dict(source, spec=spec, taxonomy=taxonomy)
    save_checkpoint(
        out,
        loaded.model,
        spec=loaded.spec,
        taxonomy=loaded.taxonomy,
        extra={"imported_from": str(source)},
    )
    params = sum(p.numel() for p in loaded.model.parameters())
    summary = {
        "source": str(source),
        "out": str(out),
        "spec": loaded.spec,
        "taxonomy": loaded.taxonomy.name,
        "num_classes": loaded.model.num_classes,
        "parameters": params,
    }
    if as_json:
        emit_json(summary)
    else:
        print(
            f"wrote {out}: {loaded.spec}, {loaded.taxonomy.name} ({loaded.model.num_classes} classes), {params:,} parameters"
        )


@app.command("predict")
def predict_cmd(
    images: list[str] = typer.Argument(
        ..., help="Image files, folders (searched recursively) or glob patterns ('**' allowed)."
    ),
    checkpoint: Path = typer.Option(..., "--checkpoint", help=f"{CHECKPOINT_HELP}."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder: <name>.png train ids (names: file stems, or paths inside a "
        "given folder), <name>_overlay.png colours, <name>_probs.npz with --probabilities.",
    ),
    input_size: str = typer.Option(
        None, "--input-size", help="Resize to WIDTHxHEIGHT for the model (e.g. 960x704)."
    ),
    batch_size: int = typer.Option(
        1, "--batch-size", min=1, help="Images per forward pass (consecutive images of one size)."
    ),
    tta: bool = typer.Option(False, "--tta", help=TTA_HELP),
    tta_scales: str | None = typer.Option(None, "--tta-scales", help=TTA_SCALES_HELP),
    overlays: bool = typer.Option(
        True, "--overlays/--no-overlays", help="Write the colour overlays."
    ),
    probabilities: bool = typer.Option(
        False,
        "--probabilities",
        help="Also write class probabilities: <name>_probs.npz holding 'probabilities' "
        "(C, H, W) float16 and 'classes'.",
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the written files as JSON."),
) -> None:
    """Segment images with a checkpoint: writes train-id PNGs, colour overlays and, if
    asked, class probabilities. Progress goes to stderr.

    Examples:
      labelbridge predict frames/ --checkpoint run/final.ckpt --out preds/
      labelbridge predict 'drive/**/*.jpg' --checkpoint run/final.ckpt --out preds/ --tta
    """
    from labelbridge.models import load_checkpoint
    from labelbridge.models.device import resolve_device
    from labelbridge.models.predict_files import collect_images, predict_images

    inputs = collect_images(images)
    loaded = load_checkpoint(checkpoint, map_location=resolve_device(device))
    written = predict_images(
        loaded,
        inputs,
        out,
        input_size=parse_size(input_size),
        batch_size=batch_size,
        tta=tta_predictor(loaded.model, loaded.taxonomy.num_classes, tta=tta, scales=tta_scales),
        overlay=overlays,
        probabilities=probabilities,
    )
    if as_json:
        emit_json(
            {
                "checkpoint": str(checkpoint),
                "spec": loaded.spec,
                "taxonomy": loaded.taxonomy.name,
                "outputs": written,
            }
        )
        return
    print(f"{len(written)} images segmented into {out} ({loaded.taxonomy.name} classes)")
