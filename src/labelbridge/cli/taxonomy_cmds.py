"""``labelbridge taxonomies`` and ``labelbridge ontology check|show``."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import app, emit_json, ontology_app
from labelbridge.taxonomy import list_mappings, list_taxonomies, load_ontology, load_taxonomy
from labelbridge.taxonomy.registry import mapping_sides


@app.command("taxonomies")
def taxonomies_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    mappings: bool = typer.Option(
        False, "--mappings", help="Also list the built-in ontology mappings."
    ),
) -> None:
    """List the built-in taxonomies with their class counts (and built-in mappings)."""
    rows = []
    for name in list_taxonomies():
        tax = load_taxonomy(name)
        rows.append(
            {
                "name": name,
                "title": tax.title,
                "classes": len(tax.classes),
                "train_classes": tax.num_classes,
                "label_format": tax.label_format,
            }
        )
    if as_json:
        extra_keys = {}
        if mappings:
            extra_keys = {
                "mappings": list_mappings(),
                "mapping_sides": {
                    m: dict(zip(("source", "extra"), mapping_sides(m), strict=True))
                    for m in list_mappings()
                },
            }
        emit_json({"taxonomies": rows, **extra_keys})
        return
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  classes  train  title")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['classes']:>7}  {r['train_classes']:>5}  {r['title']}")
    if mappings:
        print(f"\nbuilt-in mappings ({len(list_mappings())}), extra -> source:")
        for m in list_mappings():
            src, ext = mapping_sides(m)
            print(f"  {m:<{width + 20}} {ext} -> {src}")


@ontology_app.command("check")
def ontology_check_cmd(
    file: str = typer.Argument(
        ..., help="Mapping file (yaml, or a reference CSV / MSeg TSV), or a built-in name."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    strict: bool = typer.Option(
        False, "--strict", help="CSV/TSV: an unknown extra label name is an error."
    ),
) -> None:
    """Validate a mapping: exit 0 when valid, non-zero with a message naming file, line and name.

    Names resolved other than exactly (aliases, case/spacing, groups) and, for tables,
    what the import decided are reported."""
    from labelbridge.cli.ontology_tools_cmds import import_summary, print_import_summary
    from labelbridge.taxonomy.formats import read_ontology

    onto = read_ontology(file, strict=strict)
    summary = {
        "file": onto.origin,
        "source": onto.source.name,
        "extra": onto.extra.name,
        "unlabelled": onto.unlabelled,
        "valid": True,
        "rows": {
            c.name: onto.allowed_names(c.name) + (["ignore"] if onto.void_allowed[c.id] else [])
            for c in onto.extra.classes
        },
        "projection": onto.projection_names(),
    }
    if as_json:
        emit_json({**summary, **import_summary(onto)})
        return
    print(
        f"OK {onto.origin}: {onto.extra.name} -> {onto.source.name}, unlabelled: {onto.unlabelled}"
    )
    for name, allowed in summary["rows"].items():
        shown = ", ".join(a if a != "ignore" else "or ignore" for a in allowed)
        print(f"  {name:<24} -> {shown if allowed else '(ignore)'}")
    print_import_summary(onto)


@ontology_app.command("show")
def ontology_show_cmd(
    file: str = typer.Argument(..., help="Mapping YAML file or built-in mapping name."),
    out: Path = typer.Option(..., "--out", help="PNG file to write the matrix picture to."),
) -> None:
    """Draw the mapping as a matrix picture (extra labels x source classes)."""
    from labelbridge.viz.ontology_matrix import plot_ontology_matrix

    onto = load_ontology(file)
    plot_ontology_matrix(onto, out)
    print(f"wrote {out}")
