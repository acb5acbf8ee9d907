"""``labelbridge ontology diff`` and ``labelbridge ontology convert``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

from labelbridge.cli.app import emit_json, ontology_app
from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import UserError
from labelbridge.taxonomy import Ontology, list_mappings, load_ontology
from labelbridge.taxonomy.formats import (
    FORMATS,
    format_from_path,
    import_notes,
    read_ontology,
    write_ontology,
)

logger = logging.getLogger(__name__)

_FORMAT_HELP = (
    f"One of {', '.join(FORMATS)}; default from the file extension (no extension: built-in YAML)."
)


def _projection_names(onto: Ontology) -> dict[str, str]:
    return {
        name: (onto.extra.train_names[int(e)] if int(e) != IGNORE_INDEX else "ignore")
        for name, e in zip(onto.source.train_names, onto.projection, strict=True)
    }


def _aligned_labels(a: Ontology, b: Ontology) -> tuple[dict[str, str], str | None]:
    """Labels of A's extra taxonomy paired with B's: the same names when the extra
    taxonomies agree, else through a built-in mapping between the two extra taxonomies
    whose every row names one class (e.g. ``camvid32_to_camvid11``)."""
    if a.extra.name == b.extra.name:
        return {c.name: c.name for c in a.extra.classes}, None
    for fine, coarse, flip in ((a.extra, b.extra, False), (b.extra, a.extra, True)):
        name = f"{fine.name}_to_{coarse.name}"
        if name not in list_mappings():
            continue
        bridge = load_ontology(name)
        pairs: dict[str, str] = {}
        for cls in fine.classes:
            allowed = bridge.allowed_names(cls.name)
            if len(allowed) == 1:
                pairs[cls.name] = allowed[0]
        if flip:  # A is the coarse side: compare each fine label of B with its parent
            return {v: k for k, v in pairs.items()}, name
        return pairs, name
    return {}, None


def ontology_diff(a: Ontology, b: Ontology) -> dict[str, Any]:
    """Differences between two mappings, by class name.

    Extra labels are compared by name, or, across two extra taxonomies (CamVid-32 and
    CamVid-11), through a built-in one-class-per-row mapping between them (``via``).

    Returns:
        ``{"a", "b", "taxonomies": {...}, "via": mapping name | None, "labels": {extra
        label: {"added": [...], "removed": [...]}}, "void": {label: {"a", "b"}},
        "unlabelled": {"a", "b"} | None, "projection": {source class: {"a", "b"}},
        "identical": bool}``; ``added`` are source classes allowed in B but not in A
        (from the allowed matrices, so policies are taken into account).
    """
    pairs, via = _aligned_labels(a, b)
    if via is not None and a.extra.name != b.extra.name:
        keys = list(pairs.items())
    else:
        keys = [(c.name, c.name) for c in a.extra.classes] + [
            (c.name, c.name) for c in b.extra.classes if c.name not in a.extra
        ]
    labels: dict[str, dict[str, list[str]]] = {}
    void: dict[str, dict[str, bool]] = {}
    for name_a, name_b in keys:
        in_a = a.allowed_names(name_a) if name_a in a.extra else []
        in_b = b.allowed_names(name_b) if name_b in b.extra else []
        shown = name_a if name_a == name_b else f"{name_a} / {name_b}"
        added = [n for n in in_b if n not in in_a]
        removed = [n for n in in_a if n not in in_b]
        if added or removed:
            labels[shown] = {"added": added, "removed": removed}
        va = bool(a.void_allowed[a.extra.get(name_a).id]) if name_a in a.extra else False
        vb = bool(b.void_allowed[b.extra.get(name_b).id]) if name_b in b.extra else False
        if va != vb:
            void[shown] = {"a": va, "b": vb}
    same_extra = a.extra.name == b.extra.name
    pa, pb = _projection_names(a), _projection_names(b)
    projection = (
        {
            s: {"a": pa.get(s, "-"), "b": pb.get(s, "-")}
            for s in list(pa) + [s for s in pb if s not in pa]
            if pa.get(s) != pb.get(s)
        }
        if same_extra
        else {}
    )
    taxonomies = {
        "source": {"a": a.source.name, "b": b.source.name},
        "extra": {"a": a.extra.name, "b": b.extra.name},
    }
    unlabelled = None if a.unlabelled == b.unlabelled else {"a": a.unlabelled, "b": b.unlabelled}
    same_tax = a.source.name == b.source.name and same_extra
    return {
        "a": a.origin,
        "b": b.origin,
        "taxonomies": taxonomies,
        "via": via,
        "labels": labels,
        "void": void,
        "unlabelled": unlabelled,
        "projection": projection,
        "identical": same_tax and not labels and not void and not projection and a.same_as(b),
    }


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
        try:
            proj = json.loads(projection)
        except json.JSONDecodeError as exc:
            raise UserError(
                f'--projection must be a JSON object like \'{{"wall": "Building"}}\': {exc}'
            ) from None
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
        kinds: dict[str, int] = {}
        for m in onto.name_matches:
            kind = m.rsplit("(", 1)[-1].rstrip(")")
            kinds[kind] = kinds.get(kind, 0) + 1
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
    source: str = typer.Option(
        None, "--source", help="Source taxonomy for CSV/TSV files without metadata."
    ),
    extra: str = typer.Option(
        None, "--extra", help="Extra taxonomy for CSV/TSV files without metadata."
    ),
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
    diff = ontology_diff(oa, ob)
    if as_json:
        emit_json(diff)
    else:
        for role, pair in diff["taxonomies"].items():
            if pair["a"] != pair["b"]:
                print(f"{role} taxonomy: {pair['a']} -> {pair['b']}")
        if diff["via"]:
            print(f"extra labels paired through {diff['via']}")
        for label, change in diff["labels"].items():
            parts = [f"+{n}" for n in change["added"]] + [f"-{n}" for n in change["removed"]]
            print(f"  {label:<24} {' '.join(parts)}")
        for label, pair in diff["void"].items():
            print(f"  {label:<24} void option: {pair['a']} -> {pair['b']}")
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
    src: str = typer.Argument(
        ...,
        help="Input mapping: yaml/csv/tsv file, or built-in name. A reference "
        "datasets/<dataset>/lists/master_labels_<source>.csv names its own taxonomies.",
    ),
    out: Path = typer.Argument(..., help="Output file (format from the extension)."),
    from_fmt: str = typer.Option(None, "--from", help=f"Input format. {_FORMAT_HELP}"),
    to_fmt: str = typer.Option(None, "--to", help=f"Output format. {_FORMAT_HELP}"),
    source: str = typer.Option(
        None,
        "--source",
        help="Source taxonomy (name or YAML path) for CSV/TSV input without metadata; "
        "default from the reference's path convention.",
    ),
    extra: str = typer.Option(
        None,
        "--extra",
        help="Extra taxonomy (name or YAML path) for CSV/TSV input without metadata; "
        "default from the reference's dataset folder name.",
    ),
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
    written = write_ontology(onto, out, fmt=to_fmt, metadata=metadata, labels_csv=labels_csv)
    fmt = to_fmt or format_from_path(out)
    plain = not metadata and fmt != "yaml"
    back = read_ontology(
        out,
        fmt=fmt,
        source=onto.source,
        extra=onto.extra,
        unlabelled=onto.unlabelled if plain else None,
        projection=(onto.projection_overrides or {}) if plain else None,
        strict=True,
    )
    if not back.same_as(onto):
        raise UserError(f"{out}: the written {fmt} file does not read back as the same mapping")
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
    if plain:
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
