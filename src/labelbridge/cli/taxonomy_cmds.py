"""``labelbridge taxonomies`` and ``labelbridge ontology check|show``."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import app, emit_json, ontology_app
from labelbridge.taxonomy import list_mappings, list_taxonomies, load_ontology, load_taxonomy


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
        emit_json({"taxonomies": rows, **({"mappings": list_mappings()} if mappings else {})})
        return
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  classes  train  title")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['classes']:>7}  {r['train_classes']:>5}  {r['title']}")
    if mappings:
        print("\nbuilt-in mappings: " + ", ".join(list_mappings()))


@ontology_app.command("check")
def ontology_check_cmd(
    file: str = typer.Argument(..., help="Mapping YAML file, or the name of a built-in mapping."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Validate a mapping: exit 0 when valid, non-zero with a message naming file, line and name."""
    onto = load_ontology(file)
    summary = {
        "file": onto.origin,
        "source": onto.source.name,
        "extra": onto.extra.name,
        "unlabelled": onto.unlabelled,
        "valid": True,
        "rows": {c.name: onto.allowed_names(c.name) for c in onto.extra.classes},
        "projection": {
            name: (onto.extra.train_names[int(e)] if int(e) < onto.extra.num_classes else "ignore")
            for name, e in zip(onto.source.train_names, onto.projection, strict=True)
        },
    }
    if as_json:
        emit_json(summary)
        return
    print(
        f"OK {onto.origin}: {onto.extra.name} -> {onto.source.name}, unlabelled: {onto.unlabelled}"
    )
    for name, allowed in summary["rows"].items():
        print(f"  {name:<24} -> {', '.join(allowed) if allowed else '(ignore)'}")


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
