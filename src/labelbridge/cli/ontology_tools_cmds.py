"""``labelbridge ontology diff``, ``convert`` and ``derive``: argument parsing and
printing; the comparison is :func:`labelbridge.taxonomy.diff.diff_ontologies`, reading and
writing :mod:`labelbridge.taxonomy.formats`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from labelbridge.cli.app import emit_json, ontology_app
from labelbridge.errors import UserError
from labelbridge.taxonomy import Ontology
from labelbridge.taxonomy.diff import diff_ontologies
from labelbridge.taxonomy.formats import (
    FORMATS,
    carries_metadata,
    format_from_path,
    import_notes,
    projection_json,
    read_ontology,
    write_ontology,
)

logger = logging.getLogger(__name__)

_FORMAT_HELP = (
    f"One of {', '.join(FORMATS)}; default from the file extension (no extension: built-in YAML)."
)


def _taxonomy_option(role: str, default_from: str | None = None) -> Any:
    """The ``--source`` / ``--extra`` option: the taxonomy of CSV/TSV input without
    metadata; ``default_from`` names the part of the reference's path convention that
    gives it otherwise."""
    if default_from is None:
        text = f"{role.capitalize()} taxonomy for CSV/TSV files without metadata."
    else:
        text = (
            f"{role.capitalize()} taxonomy (name or YAML path) for CSV/TSV input without "
            f"metadata; default from the reference's {default_from}."
        )
    return typer.Option(None, f"--{role}", help=text)


def ontology_diff(a: Ontology, b: Ontology) -> dict[str, Any]:
    """The plain-data form (``--json``) of :func:`~labelbridge.taxonomy.diff.diff_ontologies`."""
    return diff_ontologies(a, b).to_dict()


def _load(
    path: str,
    fmt: str | None,
    source: str | None,
    extra: str | None,
    unlabelled: str | None,
    projection: str | None,
    strict: bool = False,
    column: str | None = None,
) -> Ontology:
    proj = None
    if projection is not None:
        problem = '--projection must be a JSON object like \'{"wall": "Building"}\''
        proj = projection_json(projection, problem, UserError)
    return read_ontology(
        path,
        fmt=fmt,
        source=source,
        extra=extra,
        unlabelled=unlabelled,
        projection=proj,
        strict=strict,
        extra_column=column,
    )


def import_summary(onto: Ontology) -> dict[str, Any]:
    """What reading a mapping resolved or decided, for the CLI's report."""
    return {"name_matches": list(onto.name_matches), "decisions": list(onto.import_report)}


def print_import_summary(onto: Ontology) -> None:
    """The import's decisions, then the names resolved other than exactly (counted by
    kind; each listed with ``-v``)."""
    for line in onto.import_report:
        print(f"note: {line}")
    if onto.name_matches:
        kinds = onto.name_match_counts()
        print(
            f"note: {len(onto.name_matches)} names resolved other than exactly ("
            + ", ".join(f"{v} {k}" for k, v in kinds.items())
            + "); the first: "
            + "; ".join(onto.name_matches[:3])
        )
        for m in onto.name_matches:
            logger.debug("%s", m)


@ontology_app.command("diff")
def ontology_diff_cmd(
    a: str = typer.Argument(..., help="First mapping (file in yaml/csv/tsv, or built-in name)."),
    b: str = typer.Argument(..., help="Second mapping."),
    source: str = _taxonomy_option("source"),
    extra: str = _taxonomy_option("extra"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when the mappings differ."),
) -> None:
    """Compare two mappings (per extra label: source classes added/removed, void option;
    policy; projection).

    Either side may be a YAML file, a built-in name, or a reference CSV / MSeg TSV (the
    reference's path convention names its taxonomies). Source classes are compared
    through the allowed matrices, so a policy change shows up in the rows of the ignored
    extra classes too. Mappings of two different extra taxonomies (CamVid-32 vs
    CamVid-11) are compared label by label through a built-in mapping between them."""
    oa = _load(a, None, source, extra, None, None)
    ob = _load(b, None, source, extra, None, None)
    diff = diff_ontologies(oa, ob)
    if as_json:
        emit_json(diff.to_dict())
    else:
        for role, pair in (("source", diff.source), ("extra", diff.extra)):
            if pair.a != pair.b:
                print(f"{role} taxonomy: {pair.a} -> {pair.b}")
        if diff.via:
            print(f"extra labels paired through {diff.via}")
        for label, change in diff.labels.items():
            parts = [f"+{n}" for n in change.added] + [f"-{n}" for n in change.removed]
            print(f"  {label:<24} {' '.join(parts)}")
        for label, void in diff.void.items():
            print(f"  {label:<24} void option: {void.a} -> {void.b}")
        if diff.unlabelled:
            print(f"unlabelled: {diff.unlabelled.a} -> {diff.unlabelled.b}")
        for sname, proj in diff.projection.items():
            print(f"projection {sname}: {proj.a} -> {proj.b}")
        if diff.identical:
            print(f"identical: {oa.origin} and {ob.origin} define the same mapping")
    if exit_code and not diff.identical:
        raise typer.Exit(1)


@ontology_app.command("convert")
def ontology_convert_cmd(
    src: str = typer.Argument(
        ...,
        help="Input mapping: yaml/csv/tsv file, or built-in name. A reference "
        "datasets/<dataset>/lists/master_labels_<source>.csv names its own taxonomies.",
    ),
    out: Path = typer.Argument(..., help="Output file (format from the extension)."),
    from_fmt: str = typer.Option(None, "--from", help=f"Input format. {_FORMAT_HELP}"),
    to_fmt: str = typer.Option(None, "--to", help=f"Output format. {_FORMAT_HELP}"),
    source: str = _taxonomy_option("source", "path convention"),
    extra: str = _taxonomy_option("extra", "dataset folder name"),
    unlabelled: str = typer.Option(
        None,
        "--unlabelled",
        help="Unlabelled policy for CSV/TSV input without metadata "
        "(default: constrained if an ignored extra class is listed under a class, else ignore).",
    ),
    projection: str = typer.Option(
        None,
        "--projection",
        help='Projection overrides for CSV/TSV input, as JSON: \'{"wall": "Building"}\'; '
        "default: the documented rule (fewest allowed classes, same name, lowest train id), "
        "reported.",
    ),
    metadata: bool = typer.Option(
        True,
        "--metadata/--no-metadata",
        help="CSV/TSV output: write taxonomy names, policy and projection (in the CSV "
        "header row, which the reference loader skips).",
    ),
    labels_csv: bool = typer.Option(
        True,
        "--labels-csv/--no-labels-csv",
        help="CSV output: write the reference's labels.csv (the extra taxonomy) beside it.",
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="CSV/TSV input: an extra label name missing from the extra taxonomy is an "
        "error (default: skipped and reported, as the reference loader ignores it).",
    ),
    column: str = typer.Option(
        None,
        "--column",
        help="TSV input with several dataset columns (MSeg's MSeg_master.tsv): the column of "
        "the extra dataset, e.g. cityscapes-19; its taxonomy is found by that name (alias).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary only."),
) -> None:
    """Convert a mapping between YAML, the reference CSV and the MSeg-style TSV.

    Everything the import decided (skipped names, labels in no row written as ignore,
    labels under classes and void keeping the void option, projection choices, spellings
    resolved through aliases) is reported, and written into the YAML's notes. The
    written file is read back and checked to define the same mapping."""
    onto = _load(src, from_fmt, source, extra, unlabelled, projection, strict, column)
    if onto.import_report and not onto.notes:
        onto.notes = import_notes(onto, Path(src), Path(src).name)
    fmt = to_fmt or format_from_path(out)
    written = write_ontology(
        onto, out, fmt=fmt, metadata=metadata, labels_csv=labels_csv, verify=True
    )
    if as_json:
        emit_json(
            {
                "input": src,
                "written": [str(p) for p in written],
                "format": fmt,
                "source": onto.source.name,
                "extra": onto.extra.name,
                "unlabelled": onto.unlabelled,
                "rows": len(onto.rows),
                "void_option": [c.name for c in onto.extra.classes if onto.void_allowed[c.id]],
                "projection": dict(onto.projection_overrides or {}),
                **import_summary(onto),
            }
        )
        return
    print(
        f"wrote {', '.join(str(p) for p in written)} ({fmt}): "
        f"{onto.extra.name} -> {onto.source.name}, {len(onto.rows)} rows"
    )
    print_import_summary(onto)
    if not carries_metadata(fmt, metadata):
        print(
            "note: without metadata, give --source/--extra/--unlabelled/--projection when reading it back"
        )


@ontology_app.command("derive")
def ontology_derive_cmd(
    fine: str = typer.Argument(
        ..., help="Mapping of the finer extra taxonomy (e.g. camvid32_to_cityscapes)."
    ),
    via: str = typer.Option(
        ..., "--via", help="Bridge fine -> coarse, one class per row (e.g. camvid32_to_camvid11)."
    ),
    out: Path = typer.Argument(..., help="Output file (yaml/csv/tsv)."),
) -> None:
    """Derive the mapping of a coarser extra taxonomy: each coarse label allows the union
    of what its fine members allow (plus the void option where a member has it or is
    written as ignore); projections by the documented rule."""
    from labelbridge.taxonomy.compose import derive_mapping

    onto = derive_mapping(read_ontology(fine), read_ontology(via))
    write_ontology(onto, out)
    print(f"wrote {out}: {onto.extra.name} -> {onto.source.name}, {len(onto.rows)} rows")
