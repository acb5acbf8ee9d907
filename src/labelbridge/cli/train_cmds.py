"""``labelbridge train CONFIG.yaml``: train a teacher or student (with source fine-tune)."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import app, emit_json


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:6.2f}"


@app.command("train")
def train_cmd(
    config: Path = typer.Argument(
        ..., help="Training config YAML (starters: labelbridge init --list)."
    ),
    overrides: list[str] = typer.Option(
        None,
        "--set",
        help="Override a config key, e.g. --set epochs=2 --set datasets.0.weight=2 (repeatable).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Run folder (default: the config's 'output'); an existing one is resumed.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Train (stage 1), fine-tune on the source data at a reduced learning rate (stage 2),
    and print the final model's validation metrics. Re-running resumes."""
    from labelbridge.config.train import load_train_config

    cfg = load_train_config(config, overrides)  # config errors show before the heavy imports
    from labelbridge.engine.stage import is_global_zero
    from labelbridge.engine.train import run_training

    result = run_training(cfg, out_dir=out)
    if not is_global_zero():
        return
    if as_json:
        emit_json(
            {
                "out_dir": str(result.out_dir),
                "best_checkpoint": str(result.best_checkpoint),
                "final_checkpoint": str(result.final_checkpoint),
                "metrics": result.metrics,
            }
        )
        return
    print(f"final checkpoint: {result.final_checkpoint}")
    print(f"{'val set':<16} {'mIoU':>6} {'pixacc':>6} {'meanacc':>7}")
    for label, m in result.metrics.items():
        print(
            f"{label:<16} {_fmt(m['mIoU'])} {_fmt(m['pixel_accuracy'])} {_fmt(m['mean_accuracy']):>7}"
        )
    for label, m in result.metrics.items():
        print(f"\nper-class IoU, {label}:")
        for name, iou in m["per_class_iou"].items():
            print(f"  {name:<20} {_fmt(iou)}")
