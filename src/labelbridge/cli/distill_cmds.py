"""``labelbridge distill CONFIG.yaml``: distil a frozen teacher into a compact student."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import app, emit_json


@app.command("distill")
def distill_cmd(
    config: Path = typer.Argument(
        ..., help="Distillation config YAML (starters: labelbridge init --list)."
    ),
    overrides: list[str] | None = typer.Option(
        None,
        "--set",
        help="Override a config value, e.g. --set epochs=5 --set losses.kd_final=2 (repeatable).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder (default: the config's 'output'); re-use resumes."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Multi-level knowledge distillation with domain adaptation.

    Per step, on a source batch and a target batch: CE on source labels (final and
    intermediate head), temperature-scaled KL(teacher || student) at the final output and
    an intermediate depth, optional feature matching, CE against the teacher's
    ontology-constrained pseudo-labels on target images, optional output-space
    adversarial loss. On target images with ground truth of another taxonomy the KL
    targets are restricted to the classes that ground truth allows (kd_priors).
    distill_on, kd_source_agree and teacher.input_scale choose where and how the
    teacher is matched. Each term is logged; the best student is written to
    <out>/final.ckpt and validated.
    """
    from labelbridge.config.distill import load_distill_config
    from labelbridge.distill import run_distillation

    cfg = load_distill_config(config, overrides)
    result = run_distillation(cfg, out_dir=out)
    summary = {
        "final_checkpoint": str(result.final_checkpoint),
        "best_checkpoint": str(result.best_checkpoint),
        "loss_terms": result.loss_terms,
        "metrics": {
            k: {"mIoU": v["mIoU"], "pixel_accuracy": v["pixel_accuracy"]}
            for k, v in result.metrics.items()
        },
    }
    if as_json:
        emit_json(summary)
        return
    print(f"student: {result.final_checkpoint}")
    for label, m in result.metrics.items():
        miou = "n/a" if m["mIoU"] is None else f"{100 * m['mIoU']:.2f}"
        print(f"  {label:<20} mIoU {miou}")
