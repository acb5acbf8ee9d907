"""``labelbridge export CHECKPOINT --format onnx|torchscript|hf --out DIR``: a model for
deployment tools, with the sidecar ``labelbridge_export.json``."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import CHECKPOINT_HELP, app, emit_json, parse_size


@app.command("export")
def export_cmd(
    checkpoint: Path = typer.Argument(
        ...,
        help=f"{CHECKPOINT_HELP}.",
    ),
    fmt: str = typer.Option(
        ...,
        "--format",
        help="onnx (model.onnx, onnxruntime), torchscript (model.pt2, a torch.export "
        "program: torch.export.load), hf (a transformers save_pretrained folder; "
        "Hugging Face models only) or hub (a huggingface_hub model folder of any model: "
        "HubSegmentationModel.from_pretrained, and a checkpoint for labelbridge).",
    ),
    out: Path = typer.Option(..., "--out", help="Export folder (created)."),
    head: str = typer.Option(
        "logits",
        "--head",
        help="Graph output (onnx, torchscript): logits (B, C, H, W) float32, or argmax: "
        "class ids (B, H, W), uint8 (int64 above 255 classes).",
    ),
    size: str | None = typer.Option(
        None,
        "--size",
        help="WIDTHxHEIGHT for a graph of that one size (onnx, torchscript); default: any "
        "batch, height and width the exporter can keep symbolic.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the written files and the sidecar as one JSON document."
    ),
) -> None:
    """Export CHECKPOINT: ONNX, a torch.export program, a transformers folder or a Hub folder.

    The onnx and torchscript graphs take float32 RGB images (B, 3, H, W) in [0, 1] and
    normalise, pad and crop inside; batch, height and width stay symbolic (the sidecar
    lists the served ranges). DIR/labelbridge_export.json holds the class names and
    colours, the ignore index, the input normalisation, the size divisor, the output
    kind, the opset, the versions and the check of the file against PyTorch, which
    every export passes before it is reported.

    Examples:

    \b
      labelbridge export ../shared/weights/espnetv2_s_0.5_city_1024x512.pth \\
        --format onnx --out export/espnetv2_onnx
      labelbridge export runs/camvid_teacher/final.ckpt --format onnx --head argmax \\
        --out export/teacher_ids
      labelbridge export runs/segformer/final.ckpt --format hf --out export/segformer_hf
      labelbridge export runs/student/final.ckpt --format hub --out export/student_hub
    """
    from labelbridge.models import load_model
    from labelbridge.models.export import export_model, validate_options

    fixed = parse_size(size, option="--size")
    validate_options(fmt, head, fixed)
    loaded = load_model(checkpoint=checkpoint, what="export")
    result = export_model(loaded, fmt, out, head=head, size=fixed, source=checkpoint)
    if as_json:
        emit_json(
            {
                "checkpoint": str(checkpoint),
                "format": fmt,
                "out": str(result.folder),
                "files": [str(p) for p in result.files],
                "sidecar": result.sidecar,
            }
        )
        return
    for path in result.files:
        print(path)
    model_input = result.sidecar["input"]
    ranges = ", ".join(
        f"{k} {v['min']}..{'' if v['max'] is None else v['max']}"
        for k, v in model_input.items()
        if k in ("batch", "height", "width")
    )
    print(
        f"{loaded.spec} ({loaded.taxonomy.name}, {loaded.taxonomy.num_classes} classes) -> "
        f"{fmt}, input {model_input['name']} ({ranges}), output {result.sidecar['output']['name']}"
    )
