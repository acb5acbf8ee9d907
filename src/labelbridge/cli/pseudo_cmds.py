"""``labelbridge pseudo-label CONFIG.yaml``: teacher + TTA + ontology priors -> label folders."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import app, emit_json


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.2f}%"


@app.command("pseudo-label")
def pseudo_label_cmd(
    config: Path = typer.Argument(
        ..., help="Pseudo-labelling config YAML (starters: labelbridge init --list)."
    ),
    overrides: list[str] = typer.Option(
        [],
        "--set",
        help="Override a config value, e.g. --set priors=false --set tta.scales=[1.0]. Repeatable.",
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="Process only shard i of n (images whose index % n == i), e.g. 0/4. "
        "Default: torchrun's RANK/WORLD_SIZE, else the srun task's "
        "SLURM_PROCID/SLURM_NTASKS (only for a task started by srun), else everything.",
    ),
    force_unlock: bool = typer.Option(
        False,
        "--force-unlock",
        help="Take over a shard's lock file left by a process on another host (a failed "
        "node, a killed job), which this host cannot check; use it once you know that "
        "process no longer runs. A lock of an ended process of this host is taken over "
        "without it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the per-dataset summary as JSON."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Progress bars on stderr."
    ),
) -> None:
    """Write ontology-constrained pseudo-labels for every dataset of CONFIG.

    Each dataset entry gets <output>/<name>/ with one PNG of source train ids per image
    (255 = ignore), manifest.jsonl, pseudo_labels.yaml, report.json/.md and previews/.
    Re-running the same command resumes: finished images are skipped. Each process holds
    a lock file per shard (<manifest name>.lock) while it works: a second process for the
    same shard stops with an error naming the holder.
    """
    from labelbridge.config.pseudo import load_pseudo_config
    from labelbridge.pseudo.distributed import parse_shard
    from labelbridge.pseudo.run import run_pseudo_label

    cfg = load_pseudo_config(config, overrides)
    summaries = run_pseudo_label(
        cfg,
        shard=parse_shard(shard) if shard else None,
        progress=progress and not as_json,
        force_unlock=force_unlock,
    )
    rows = [s.to_dict() for s in summaries]
    if as_json:
        emit_json({"config": str(config), "output": cfg.output, "datasets": rows})
        return
    width = max([len(r["name"]) for r in rows] + [7])
    print(
        f"{'dataset':<{width}}  images  done now  resumed  failed  img/s  changed  ignore  conf  "
        "agree(pseudo)  agree(teacher)  complete"
    )
    for r in rows:
        ips = "-" if r["images_per_second"] is None else f"{r['images_per_second']:.2f}"
        conf = "-" if r["mean_confidence"] is None else f"{r['mean_confidence']:.3f}"
        print(
            f"{r['name']:<{width}}  {r['total']:>6}  {r['processed']:>8}  {r['resumed']:>7}  {r['failed']:>6}  "
            f"{ips:>5}  {_pct(r['changed_by_priors_share']):>7}  {_pct(r['ignore_share']):>6}  {conf:>4}  "
            f"{_pct(r['agreement_pseudo']):>13}  {_pct(r['agreement_teacher']):>14}  {'yes' if r['complete'] else 'no'}"
        )
        for fb in r["fallbacks"]:
            print(
                f"  out of memory at scale {fb['scale']}: switched to {fb['level']} ({fb['images']} images)"
            )
    print(
        "agree = share of labelled extra pixels where the label, projected to the extra taxonomy, "
        "equals the extra ground truth (teacher = the same TTA without priors)"
    )
    for s in summaries:
        print(f"wrote {s.folder} (report: {s.folder / 'report.md'})")
