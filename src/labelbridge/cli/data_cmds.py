"""``labelbridge datasets list`` and ``labelbridge datasets check``."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import datasets_app, emit_json
from labelbridge.data import readers  # noqa: F401  (registers the readers)
from labelbridge.data.checks import SplitReport, check_dataset
from labelbridge.data.registry import list_datasets
from labelbridge.taxonomy.registry import mappings_from

_SHOW = 5  # problem files printed per kind in the text output


@datasets_app.command("list")
def datasets_list_cmd(
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON (with the built-in mappings of each) instead."
    ),
) -> None:
    """List the dataset readers, one per line: name, taxonomy of its label files, splits
    (unlabelled ones marked *), whether `datasets prepare` is needed first, and the file
    layout it reads (paths relative to --root). --json adds the source taxonomies its
    built-in mappings lead to."""
    rows = [
        {
            "name": info.name,
            "taxonomy": info.taxonomy,
            "splits": list(info.splits),
            "unlabelled_splits": list(info.unlabelled_splits),
            "prepare": info.prepare or None,
            "maps_to": [{"source": src, "mapping": m} for src, m in mappings_from(info.taxonomy)],
            "layout": info.layout,
        }
        for info in list_datasets()
    ]
    if as_json:
        emit_json({"datasets": rows})
        return
    table = [("name", "taxonomy", "splits (* = no labels)", "prepare", "layout")]
    for r in rows:
        splits = (
            ",".join(s + ("*" if s in r["unlabelled_splits"] else "") for s in r["splits"]) or "any"
        )
        table.append((r["name"], r["taxonomy"], splits, r["prepare"] or "-", r["layout"]))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print(
            "  ".join(f"{cell:<{w}}" for cell, w in zip(row[:4], widths, strict=True))
            + "  "
            + row[4]
        )


def _print_split(s: SplitReport) -> None:
    if s.error:
        print(f"  {s.split}: ERROR {s.error}")
        return
    if s.absent:
        print(f"  {s.split}: absent, not checked ({s.absent})")
        return
    if not s.labelled:
        print(
            f"  {s.split}: {s.unlabelled_images} unlabelled images (split published without labels)"
        )
    else:
        print(f"  {s.split}: {s.pairs} pairs, {s.checked} checked, {s.num_problems} problems")
    for title, items in (
        ("images without labels", [(p, "") for p in s.images_without_labels]),
        ("size mismatches", [(p.path, p.problem) for p in s.size_mismatches]),
        ("unknown ids", [(p, str(ids[:10])) for p, ids in s.unknown_ids.items()]),
        ("unreadable", [(p.path, p.problem) for p in s.unreadable]),
    ):
        if not items:
            continue
        print(f"    {title}: {len(items)}")
        for path, detail in items[:_SHOW]:
            print(f"      {path}" + (f"  {detail}" if detail and detail not in path else ""))
        if len(items) > _SHOW:
            print(f"      ... {len(items) - _SHOW} more (--json lists all)")
    total = sum(s.class_histogram.values())
    if total:
        top = sorted(s.class_histogram.items(), key=lambda kv: -kv[1])
        shares = ", ".join(f"{name} {100.0 * n / total:.1f}%" for name, n in top if n)
        print(f"    classes: {shares}")


@datasets_app.command("check")
def datasets_check_cmd(
    name: str = typer.Argument(..., help="Reader name (see `labelbridge datasets list`)."),
    root: Path | None = typer.Option(
        None, "--root", help="Dataset root folder (default: $LABELBRIDGE_DATA/<name>)."
    ),
    split: list[str] | None = typer.Option(
        None,
        "--split",
        help="Split to check (repeatable; default: every split that was downloaded, 'absent' noted for the others).",
    ),
    sample: int | None = typer.Option(
        None,
        "--sample",
        min=1,
        help="Open only N evenly spread images per split (counts still cover all).",
    ),
    verify_images: bool = typer.Option(
        False, "--verify-images", help="Decode images fully (finds truncated files; slower)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Check a dataset's files: pairs per split, images without labels, size mismatches,
    ids outside the taxonomy, unreadable files, class histogram. Exit 1 when problems
    are found."""
    report = check_dataset(name, root, split or None, sample=sample, verify_images=verify_images)
    if as_json:
        emit_json(report.to_dict())
    else:
        print(f"{report.dataset} at {report.root} (taxonomy {report.taxonomy})")
        for s in report.splits:
            _print_split(s)
        print("OK" if report.ok else f"{report.num_problems} problems found")
    if not report.ok:
        raise typer.Exit(1)


@datasets_app.command("prepare")
def datasets_prepare_cmd(
    name: str = typer.Argument(
        ..., help="Dataset with a prepare step (see `labelbridge datasets list`)."
    ),
    root: Path = typer.Option(..., "--root", help="The dataset as published (its root folder)."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder (created). Pass it as --root of the same reader afterwards; "
        "a re-run into it resumes.",
    ),
    split: list[str] | None = typer.Option(
        None, "--split", help="Split to prepare (repeatable; default: every split)."
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", help="Worker processes (default: the usable CPU cores)."
    ),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Record bad source files and go on instead of stopping."
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="Convert only shard i of n of each split (items whose index % n == i), e.g. "
        "0/4, to split the work across machines. Default: torchrun's RANK/WORLD_SIZE, else "
        "the srun task's SLURM_PROCID/SLURM_NTASKS (only for a task started by srun), else "
        "everything.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Convert a dataset's published form once into label files its reader takes
    (nuImages masks, Waymo parquet, COCO / WildDash 2 panoptic, IDD polygons).

    Resumable: finished files are kept and skipped on the next run, every file is
    written atomically. Progress goes to stderr. Exit 1 when files were skipped."""
    from labelbridge.data.prepare import default_jobs, prepare_dataset
    from labelbridge.sharding import parse_shard

    report = prepare_dataset(
        name,
        root,
        out,
        splits=split or None,
        jobs=jobs if jobs is not None else default_jobs(),
        on_error="skip" if skip_bad else "raise",
        progress=True,
        shard=parse_shard(shard) if shard else None,
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        for s in report.splits:
            of = "" if report.shard == "0/1" else f" (shard {report.shard} of {s.split_tasks})"
            print(
                f"{report.dataset} {s.split}: {s.tasks} items{of}, {s.already_done} already "
                f"done, {s.converted} converted ({s.files_written} files), {len(s.skipped)} skipped"
            )
            for text in s.notes:
                print(f"    {text}")
            for rec in s.skipped[:_SHOW]:
                print(f"    skipped {rec.problem}")
        print(
            f"prepared into {report.out} in {report.seconds:.1f} s; read it with --root {report.out}"
        )
    if not report.ok:
        raise typer.Exit(1)
