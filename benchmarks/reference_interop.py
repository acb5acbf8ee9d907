"""Interoperability with the reference's mapping files, and the table of the label world.

For every ``datasets/<dataset>/lists/master_labels_{cityscapes,mapillary,offroad}.csv``
of the reference implementation: does it import by path alone (``labelbridge ontology
convert FILE OUT.yaml``), does the written YAML pass the loader and give the same
mapping, is it equivalent to our built-in ``<extra>_to_<source>`` (and if not, which
rows differ and what the built-in's notes say about it), and which choices the import
made (void options, labels written as ignore, skipped names, projections by rule).

Writes the section ``reference-interop`` of ``benchmarks/results.md`` and the generated
table ``docs/label-world.md`` (taxonomies, readers, built-in mappings).

Usage::

    python -m benchmarks.reference_interop [--reference ../shared/reference/data-priors]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.common.paths import REPO, SHARED
from benchmarks.common.results import command_line, program, run_header, write_section
from labelbridge.cli.ontology_tools_cmds import ontology_diff
from labelbridge.data import readers  # noqa: F401  (registers the readers)
from labelbridge.data.registry import list_datasets
from labelbridge.errors import UserError
from labelbridge.taxonomy import Ontology, list_mappings, list_taxonomies, load_ontology
from labelbridge.taxonomy.formats import read_ontology, write_ontology
from labelbridge.taxonomy.registry import load_taxonomy, mapping_sides

DEFAULT_REFERENCE = SHARED / "reference" / "data-priors"
SOURCES = ("cityscapes", "mapillary", "offroad")


def _count(report: list[str], needle: str) -> int:
    return sum(needle in line for line in report)


def interop_row(path: Path, root: Path, tmp: Path) -> dict:
    rel = path.relative_to(root / "datasets").as_posix()
    row = {"file": rel, "imported": "no", "same_after_write": "-", "builtin": "-",
           "equivalent": "-", "void_option": 0, "unlisted": "", "skipped": 0,
           "projection_by_rule": 0, "spellings": 0}  # fmt: skip
    try:
        onto = read_ontology(path)
    except UserError as exc:
        row["imported"] = f"no: {str(exc).splitlines()[0][:120]}"
        return row
    row["imported"] = "yes"
    out = tmp / f"{path.parent.parent.name}_{path.stem}.yaml"
    write_ontology(onto, out)
    row["same_after_write"] = "yes" if Ontology.from_file(out).same_as(onto) else "NO"
    row["void_option"] = int(onto.void_allowed.sum())
    unlisted = [line for line in onto.import_report if "are in no row" in line]
    row["unlisted"] = unlisted[0].split(": ", 2)[1].split(" labels")[0] if unlisted else "0"
    row["skipped"] = _count(onto.import_report, ": skipped ")
    row["projection_by_rule"] = len(onto.projection_overrides or {})
    row["spellings"] = len(onto.name_matches)
    name = f"{onto.extra.name}_to_{onto.source.name}"
    if name in list_mappings():
        row["builtin"] = name
        diff = ontology_diff(onto, load_ontology(name))
        if diff["identical"]:
            row["equivalent"] = "yes"
        else:
            parts = [f"{k}: {'+' + ','.join(v['added']) if v['added'] else ''}"
                     f"{' -' + ','.join(v['removed']) if v['removed'] else ''}"
                     for k, v in diff["labels"].items()]  # fmt: skip
            parts += [f"{k}: void {v['a']}->{v['b']}" for k, v in diff["void"].items()]
            parts += [f"projection {k}: {v['a']}->{v['b']}" for k, v in diff["projection"].items()]
            if diff["unlabelled"]:
                parts.append(f"unlabelled {diff['unlabelled']['a']}->{diff['unlabelled']['b']}")
            row["equivalent"] = "differs (see the built-in's notes): " + "; ".join(parts)[:300]
    return row


def interop_table(rows: list[dict]) -> str:
    ok = sum(r["imported"] == "yes" and r["same_after_write"] == "yes" for r in rows)
    lines = [
        f"**{ok} of {len(rows)}** reference files import by path alone and read back as the "
        "same mapping. Columns: void option = labels listed under classes and void "
        "(kept as 'classes, or outside the source'); unlisted = labels in no row, written "
        "as ignore (the reference's default); skipped = names that are not labels of the "
        "dataset (reference defects, listed in each built-in's notes); projection by rule = "
        "source classes several labels allow, projected by the documented rule; spellings = "
        "names resolved through aliases, groups or case/spacing.",
        "",
        "| reference file | imported | same after write | built-in | equivalent | void option "
        "| unlisted | skipped | projection by rule | spellings |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['file']}` | {r['imported']} | {r['same_after_write']} | `{r['builtin']}` "
            f"| {r['equivalent']} | {r['void_option']} | {r['unlisted']} | {r['skipped']} "
            f"| {r['projection_by_rule']} | {r['spellings']} |"
        )
    return "\n".join(lines) + "\n"


def label_world_table() -> str:
    """Taxonomies with their readers and built-in mappings (generated)."""
    readers_by_tax: dict[str, list[str]] = {}
    for info in list_datasets():
        readers_by_tax.setdefault(info.taxonomy, []).append(info.name)
    maps: dict[str, list[str]] = {}
    for m in list_mappings():
        src, ext = mapping_sides(m)
        maps.setdefault(ext, []).append(f"{src} (`{m}`)")
    lines = [
        "# The label world",
        "",
        f"Generated by `{command_line(__file__, [])}` from the built-in files; do "
        "not edit by hand. Per built-in taxonomy: its reader(s), its other names (aliases, "
        "e.g. the reference's folder names), and the source taxonomies its built-in "
        "mappings lead to.",
        "",
        "| taxonomy | classes / train | readers | also called | maps to |",
        "|---|---|---|---|---|",
    ]
    for name in list_taxonomies():
        tax = load_taxonomy(name)
        lines.append(
            f"| `{name}` | {len(tax.classes)} / {tax.num_classes} "
            f"| {', '.join(readers_by_tax.get(name, [])) or '-'} "
            f"| {', '.join(tax.aliases) or '-'} | {'; '.join(maps.get(name, [])) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    args = parser.parse_args(argv)
    files = sorted(
        p
        for s in SOURCES
        for p in (args.reference / "datasets").glob(f"*/lists/master_labels_{s}.csv")
    )
    (REPO / "docs" / "label-world.md").write_text(label_world_table(), encoding="utf-8")
    if not files:
        print(f"skipped: no reference files under {args.reference}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        rows = [interop_row(p, args.reference, Path(tmp)) for p in files]
    body = (
        "## Reference interoperability: the paper's mapping files as they are (issue 14)\n\n"
        + run_header(command_line(__file__, []))
        + "\n"
        + interop_table(rows)
    )
    write_section("reference-interop", body)
    ok = sum(r["imported"] == "yes" and r["same_after_write"] == "yes" for r in rows)
    print(f"{ok} of {len(rows)} reference files import and read back as the same mapping")
    return 0 if ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
