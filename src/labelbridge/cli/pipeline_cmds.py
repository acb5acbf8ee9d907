"""``labelbridge pipeline CONFIG.yaml`` and ``labelbridge demo``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from labelbridge.cli.app import app, emit_json


@app.command("pipeline")
def pipeline_cmd(
    config: Path = typer.Argument(
        ..., help="Pipeline config YAML (starter: labelbridge init demo)."
    ),
    overrides: list[str] = typer.Option(
        [],
        "--set",
        help="Override a config value, e.g. --set iterations=2 --set pseudo.arms=[priors]. Repeatable.",
    ),
    plan: bool = typer.Option(
        False, "--plan", help="Only list the stages and which are done; run nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print results.json instead of the table."),
) -> None:
    """Run teacher -> pseudo-labels -> student (-> source fine-tune) -> further rounds.

    `targets` in the config (hard, soft, partial, hard+partial) trains one student per
    way of learning from the extras (pseudo-labels, soft labels, their own labels as
    partial labels, both), side by side in one table.

    Everything goes to the config's run_dir: one sub-folder per stage, state.json
    (finished stages), results.md and results.json (mIoU of teacher and students on
    every evaluation set). Re-running the same command resumes: finished stages are
    skipped, an interrupted one continues from its own checkpoints.
    """
    from labelbridge.config.pipeline import load_pipeline_config
    from labelbridge.pipeline import STATE_FILE, RunState, plan_stages, run_pipeline

    cfg = load_pipeline_config(config, overrides)
    if plan:
        state = RunState(cfg.run_path / STATE_FILE)
        rows = [
            {
                "stage": s.name,
                "kind": s.kind,
                "target": s.target,
                "status": state.stages.get(s.name, {}).get("status", "todo"),
            }
            for s in plan_stages(cfg)
        ]
        if as_json:
            emit_json({"run_dir": cfg.run_dir, "stages": rows})
            return
        for r in rows:
            target = f" ({r['target']} labels)" if r["target"] else ""
            print(f"{r['status']:<8} {r['stage']:<40} {r['kind']}{target}")
        return
    result = run_pipeline(cfg)
    if not result.recorded:  # srun tasks, torchrun processes: process 0 reports
        return
    if as_json:
        emit_json(json.loads(result.results_json.read_text(encoding="utf-8")))
        return
    print(result.table)
    print(f"\nwrote {result.results_md} and {result.results_json}")


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(
        Path("labelbridge_demo"), "--out", help="Folder for the world, the run and the panels."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the procedural world."),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="Tiny sizes, under a minute (checks the plumbing; numbers mean nothing).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Run the method end to end on an embedded procedural driving world (no downloads).

    Renders a small clear-day source set, two large extra sets with other taxonomies,
    labelling policies and lighting (one merges car+truck and road+sidewalk, one leaves
    the sky and upper facades void like LiDAR-projected labels), and a robustness set;
    then trains a teacher, pseudo-labels the extras with and without ontology priors,
    trains both students and prints teacher / Naive Student / student with priors.
    Re-running with the same --out resumes.
    """
    from labelbridge.demo import ordering_line, run_demo

    start = time.perf_counter()
    result = run_demo(out, seed=seed, quick=quick)
    elapsed = time.perf_counter() - start
    if as_json:
        data = json.loads(result.pipeline.results_json.read_text(encoding="utf-8"))
        data.update(
            ordering=result.ordering,
            panels=[str(p) for p in result.panels],
            report=str(result.report),
            seconds=round(elapsed, 1),
        )
        emit_json(data)
        return
    print(result.pipeline.table)
    print()
    for label in result.ordering:
        print(ordering_line(result.pipeline, label))
    if quick and not all(result.ordering.values()):
        print(
            "(--quick trains for seconds: differences of a point or two are noise; run "
            "without --quick for the full profile)"
        )
    print(f"\npanels: {result.out_dir / 'panels'} ({len(result.panels)} files)")
    print(f"report: {result.report}")
    print(f"finished in {elapsed:.0f} s")
