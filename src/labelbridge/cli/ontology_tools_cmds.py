"""``labelbridge ontology diff`` and ``labelbridge ontology convert``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from labelbridge.cli.app import emit_json, ontology_app
from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import UserError
from labelbridge.taxonomy import Ontology
from labelbridge.taxonomy.formats import FORMATS, read_ontology, write_ontology

_FORMAT_HELP = (
    f"One of {', '.join(FORMATS)}; default from the file extension (no extension: built-in YAML)."
)


def _projection_names(onto: Ontology) -> dict[str, str]:
    return {
        name: (onto.extra.train_names[int(e)] if int(e) != IGNORE_INDEX else "ignore")
        for name, e in zip(onto.source.train_names, onto.projection, strict=True)
    }


def ontology_diff(a: Ontology, b: Ontology) -> dict[str, Any]:
    """Differences between two mappings, by class name.

    Returns:
        ``{"a", "b", "taxonomies": {...}, "labels": {extra label: {"added": [...],
        "removed": [...]}}, "unlabelled": {"a", "b"} | None, "projection": {source class:
        {"a", "b"}}, "identical": bool}``; ``added`` are source classes allowed in B but not
        in A (from the allowed matrices, so policies are taken into account).
    """
    labels: dict[str, dict[str, list[str]]] = {}
    names = [c.name for c in a.extra.classes] + [
        c.name for c in b.extra.classes if c.name not in a.extra
    ]
    for name in names:
        in_a = a.allowed_names(name) if name in a.extra else []
        in_b = b.allowed_names(name) if name in b.extra else []
        added = [n for n in in_b if n not in in_a]
        removed = [n for n in in_a if n not in in_b]
        if added or removed:
            labels[name] = {"added": added, "removed": removed}
    pa, pb = _projection_names(a), _projection_names(b)
    projection = {
        s: {"a": pa.get(s, "-"), "b": pb.get(s, "-")}
        for s in list(pa) + [s for s in pb if s not in pa]
        if pa.get(s) != pb.get(s)
    }
    taxonomies = {
        "source": {"a": a.source.name, "b": b.source.name},
        "extra": {"a": a.extra.name, "b": b.extra.name},
    }
    unlabelled = None if a.unlabelled == b.unlabelled else {"a": a.unlabelled, "b": b.unlabelled}
    same_tax = a.source.name == b.source.name and a.extra.name == b.extra.name
    return {
        "a": a.origin,
        "b": b.origin,
        "taxonomies": taxonomies,
        "labels": labels,
        "unlabelled": unlabelled,
        "projection": projection,
        "identical": same_tax and not labels and not projection and a.same_as(b),
    }


def _load(
    path: str,
    fmt: str | None,
    source: str | None,
    extra: str | None,
    unlabelled: str | None,
    projection: str | None,
) -> Ontology:
    proj = None
    if projection is not None:
        try:
            proj = json.loads(projection)
        except json.JSONDecodeError as exc:
            raise UserError(
                f'--projection must be a JSON object like \'{{"wall": "Building"}}\': {exc}'
            ) from None
    return read_ontology(
        path, fmt=fmt, source=source, extra=extra, unlabelled=unlabelled, projection=proj
    )


@ontology_app.command("diff")
def ontology_diff_cmd(
    a: str = typer.Argument(..., help="First mapping (file in yaml/csv/tsv, or built-in name)."),
    b: str = typer.Argument(..., help="Second mapping."),
    source: str = typer.Option(
        None, "--source", help="Source taxonomy for CSV/TSV files without metadata."
    ),
    extra: str = typer.Option(
        None, "--extra", help="Extra taxonomy for CSV/TSV files without metadata."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when the mappings differ."),
) -> None:
    """Compare two mappings (per extra label: source classes added/removed; policy; projection).

    Source classes are compared through the allowed matrices, so a policy change shows up
    in the rows of the ignored extra classes too."""
    oa = _load(a, None, source, extra, None, None)
    ob = _load(b, None, source, extra, None, None)
    diff = ontology_diff(oa, ob)
    if as_json:
        emit_json(diff)
    else:
        for role, pair in diff["taxonomies"].items():
            if pair["a"] != pair["b"]:
                print(f"{role} taxonomy: {pair['a']} -> {pair['b']}")
        for label, change in diff["labels"].items():
            parts = [f"+{n}" for n in change["added"]] + [f"-{n}" for n in change["removed"]]
            print(f"  {label:<24} {' '.join(parts)}")
        if diff["unlabelled"]:
            print(f"unlabelled: {diff['unlabelled']['a']} -> {diff['unlabelled']['b']}")
        for sname, pair in diff["projection"].items():
            print(f"projection {sname}: {pair['a']} -> {pair['b']}")
        if diff["identical"]:
            print(f"identical: {oa.origin} and {ob.origin} define the same mapping")
    if exit_code and not diff["identical"]:
        raise typer.Exit(1)


@ontology_app.command("convert")
def ontology_convert_cmd(
    src: str = typer.Argument(..., help="Input mapping (yaml/csv/tsv file, or built-in name)."),
    out: Path = typer.Argument(..., help="Output file."),
    from_fmt: str = typer.Option(None, "--from", help=f"Input format. {_FORMAT_HELP}"),
    to_fmt: str = typer.Option(None, "--to", help=f"Output format. {_FORMAT_HELP}"),
    source: str = typer.Option(
        None, "--source", help="Source taxonomy (CSV/TSV input without metadata)."
    ),
    extra: str = typer.Option(
        None, "--extra", help="Extra taxonomy (CSV/TSV input without metadata)."
    ),
    unlabelled: str = typer.Option(
        None, "--unlabelled", help="Unlabelled policy for CSV/TSV input without metadata."
    ),
    projection: str = typer.Option(
        None,
        "--projection",
        help='Projection overrides for CSV/TSV input, as JSON: \'{"wall": "Building"}\'.',
    ),
    metadata: bool = typer.Option(
        True,
        "--metadata/--no-metadata",
        help="CSV/TSV output: write the '# key: value' lines (policy, projection).",
    ),
) -> None:
    """Convert a mapping between YAML, the reference CSV and the MSeg-style TSV.

    The written file is read back and checked to define the same mapping."""
    onto = _load(src, from_fmt, source, extra, unlabelled, projection)
    fmt = write_ontology(onto, out, fmt=to_fmt, metadata=metadata)
    plain = not metadata and fmt != "yaml"
    back = read_ontology(
        out,
        fmt=fmt,
        source=onto.source,
        extra=onto.extra,
        unlabelled=onto.unlabelled if plain else None,
        projection=(onto.projection_overrides or {}) if plain else None,
    )
    if not back.same_as(onto):
        raise UserError(f"{out}: the written {fmt} file does not read back as the same mapping")
    print(f"wrote {out} ({fmt}): {onto.extra.name} -> {onto.source.name}, {len(onto.rows)} rows")
    if plain:
        print(
            "note: without metadata, give --source/--extra/--unlabelled/--projection when reading it back"
        )
