"""``labelbridge models list|import`` and ``labelbridge predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from PIL import Image

from labelbridge.cli.app import app, emit_json, parse_size
from labelbridge.errors import ResourceError, UserError

models_app = typer.Typer(
    help="List zoo models and import published checkpoints.", no_args_is_help=True
)
app.add_typer(models_app, name="models")

#: Classes assumed when counting parameters for ``models list`` (Cityscapes).
LIST_NUM_CLASSES = 19
#: Opacity of the label colours in prediction overlays.
OVERLAY_ALPHA = 0.5


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
    images: list[Path] = typer.Argument(..., help="Image files to segment."),
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="labelbridge checkpoint or published ESPNetv2 file."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output folder: <stem>.png train ids, <stem>_overlay.png colours."
    ),
    input_size: str = typer.Option(
        None, "--input-size", help="Resize to WIDTHxHEIGHT for the model (e.g. 960x704)."
    ),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print the written files as JSON."),
) -> None:
    """Segment images with a checkpoint: writes train-id PNGs and colour overlays."""
    import torch

    from labelbridge.data.base import read_image
    from labelbridge.models import image_to_tensor, load_checkpoint, predict_logits
    from labelbridge.models.tta import is_out_of_memory
    from labelbridge.viz.overlay import overlay_labels

    size = parse_size(input_size)
    loaded = load_checkpoint(checkpoint, map_location=device)
    stems = [p.stem for p in images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise UserError(f"images share file stems {duplicates}; outputs would overwrite each other")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    id_dtype = np.uint8 if loaded.taxonomy.num_classes <= 256 else np.uint16
    for path in images:
        image = read_image(path)
        try:
            with torch.inference_mode():
                logits = predict_logits(loaded.model, image_to_tensor(image), input_size=size)
        except (RuntimeError, MemoryError) as exc:
            if not is_out_of_memory(exc):
                raise
            height, width = image.shape[:2]
            raise ResourceError(
                f"{path}: out of memory segmenting this {width}x{height} image on {device}; "
                f"pass a smaller --input-size (e.g. {width // 2}x{height // 2}) or use a "
                "device with more memory"
            ) from None
        ids = logits.argmax(dim=1)[0].cpu().numpy().astype(id_dtype)
        id_path, overlay_path = out / f"{path.stem}.png", out / f"{path.stem}_overlay.png"
        Image.fromarray(ids).save(id_path)
        Image.fromarray(overlay_labels(image, ids, loaded.taxonomy, alpha=OVERLAY_ALPHA)).save(
            overlay_path
        )
        written.append({"image": str(path), "ids": str(id_path), "overlay": str(overlay_path)})
        if not as_json:
            counts = np.bincount(ids.ravel(), minlength=loaded.taxonomy.num_classes)
            top = loaded.taxonomy.train_names[int(counts.argmax())]
            print(f"{path} -> {id_path} (most frequent: {top})")
    if as_json:
        emit_json(
            {
                "checkpoint": str(checkpoint),
                "spec": loaded.spec,
                "taxonomy": loaded.taxonomy.name,
                "outputs": written,
            }
        )
