"""MSeg's mapping tables: the MSeg-style TSV (``MSeg_master.tsv``) and the pairwise
remapping files ``<from>_to_<to>.tsv`` of mseg-api.

MSeg-style TSV: one row per universal (source) class, one column per dataset, ``{a, b}``
for several classes, empty cell for none; the ``unlabeled`` row lists the extra labels
written as ignore::

    cityscapes<TAB>camvid11
    road<TAB>Road
    building<TAB>{Building, Fence}
    unlabeled<TAB>{Void}

The metadata (:mod:`~labelbridge.taxonomy.formats.metadata`) is written as
``# key: value`` lines above the table. A pairwise file has the header ``<from>\t<to>``
and one row per ``<from>`` class naming the one ``<to>`` class it becomes.
"""

from __future__ import annotations

import re
from pathlib import Path

from labelbridge.errors import OntologyError, TaxonomyError
from labelbridge.taxonomy.formats.metadata import (
    TableSettings,
    metadata_lines,
    resolve_settings,
    resolve_sides,
    split_metadata,
)
from labelbridge.taxonomy.formats.table import TableBuilder, extra_lists
from labelbridge.taxonomy.ontology import Ontology
from labelbridge.taxonomy.taxonomy import Taxonomy

#: Source-column value of the void row in the TSV (MSeg's ``unlabeled`` universal row).
TSV_VOID_NAME = "unlabeled"
_TSV_FORBIDDEN = set(",{}\t\n\r")


def _tsv_cell(names: list[str], what: str) -> str:
    for n in names:
        if set(n) & _TSV_FORBIDDEN or n != n.strip():
            raise OntologyError(
                f"{what}: class name {n!r} cannot be written in an MSeg-style TSV cell "
                f"(no commas, braces, tabs, newlines or outer spaces); use CSV or YAML"
            )
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return "{" + ", ".join(names) + "}"


def _parse_tsv_cell(cell: str, where: str) -> list[str]:
    """MSeg's ``parse_entry``: ``''`` -> none, ``{a, b}`` -> several, else one name."""
    cell = cell.strip()
    if not cell:
        return []
    if cell.startswith("{"):
        if not cell.endswith("}"):
            raise OntologyError(f"{where}: unbalanced braces in cell {cell!r}")
        names = [c.strip() for c in cell[1:-1].split(",")]
        if any(not n for n in names):
            raise OntologyError(f"{where}: empty name in cell {cell!r}")
        return names
    return [cell]


def ontology_to_tsv(onto: Ontology, *, metadata: bool = True, base_dir: Path | None = None) -> str:
    """The mapping as an MSeg-style TSV: header ``<source>\\t<extra>``, one row per source
    train class, then the ``unlabeled`` row listing the extra labels written as ignore.

    Raises:
        OntologyError: a class name cannot be written in a TSV cell (commas, braces, tabs).
    """
    what = f"{onto.origin} as TSV"
    if TSV_VOID_NAME in {n.lower() for n in onto.source.train_names}:
        raise OntologyError(
            f"{what}: source class {TSV_VOID_NAME!r} clashes with the TSV void row name"
        )
    per_source, void = extra_lists(onto)
    lines = metadata_lines(onto, "MSeg-style TSV layout", base_dir) if metadata else []
    lines.append(f"{_tsv_cell([onto.source.name], what)}\t{_tsv_cell([onto.extra.name], what)}")
    for name in onto.source.train_names:
        lines.append(f"{_tsv_cell([name], what)}\t{_tsv_cell(per_source[name], what)}")
    lines.append(f"{TSV_VOID_NAME}\t{_tsv_cell(void, what)}")
    return "\n".join(lines) + "\n"


def _pick_column(
    header: list[str], wanted: str | None, fallback: list[str], role: str, where: str
) -> int:
    lowered = [h.strip().lower() for h in header]
    for cand in ([wanted] if wanted else []) + fallback:
        if cand and cand.lower() in lowered:
            return lowered.index(cand.lower())
    if wanted:
        raise OntologyError(f"{where}: no {role} column {wanted!r} in the header {header}")
    return -1


def ontology_from_tsv(
    text: str,
    *,
    source: Taxonomy | str | None = None,
    extra: Taxonomy | str | None = None,
    unlabelled: str | None = None,
    projection: dict[str, str] | None = None,
    source_column: str | None = None,
    extra_column: str | None = None,
    origin: str = "<tsv>",
    base_dir: Path | None = None,
    inferred: tuple[str | None, str | None] = (None, None),
    strict: bool = False,
) -> Ontology:
    """Read a mapping from an MSeg-style TSV (see module doc).

    The source column is ``source_column``, else the column named like the source taxonomy,
    else ``universal``, else the first; the extra column is ``extra_column``, else the one
    named like the extra taxonomy, else the second of a two-column file. Without metadata
    and arguments, the taxonomies are taken from a two-column header (built-in names).

    Raises:
        OntologyError: naming file, line and offending name (see :func:`ontology_from_csv`).
    """
    meta, lines, first = split_metadata(text, origin)
    header_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if header_idx is None:
        raise OntologyError(f"{origin}: no header row")
    header_line = first + header_idx
    header = lines[header_idx].split("\t")
    where = f"{origin}:{header_line}"
    cols = [h.strip() for h in header]
    if source is None and "source" not in meta and cols:
        # MSeg's sheet: the 'universal' column is the source; else the first column
        source = source_column or ("universal" if "universal" in cols else cols[0])
    if extra is None and "extra" not in meta:
        if extra_column:  # a column named like a taxonomy (alias), e.g. 'cityscapes-19'
            extra = extra_column
        elif len(cols) == 2:
            extra = cols[1]
    src, ext, source_line = resolve_sides(source, extra, meta, origin, base_dir, inferred)
    scol = _pick_column(
        header, source_column, [src.name, *src.aliases, "universal"], "source", where
    )
    scol = 0 if scol < 0 else scol
    ecol = _pick_column(header, extra_column, [ext.name, *ext.aliases], "extra", where)
    if ecol < 0:
        if len(header) != 2:
            raise OntologyError(
                f"{where}: cannot tell which column holds {ext.name!r} labels in {header}; give extra_column"
            )
        ecol = 1 - scol
    settings = resolve_settings(unlabelled, projection, meta, origin, source_line)
    builder = TableBuilder(src, ext, origin, strict)
    for i, raw in enumerate(lines[header_idx + 1 :], start=header_idx + 1):
        line = first + i
        if not raw.strip():
            continue
        cells = raw.split("\t")
        loc = f"{origin}:{line}"
        sname_raw = cells[scol].strip() if scol < len(cells) else ""
        names = _parse_tsv_cell(cells[ecol] if ecol < len(cells) else "", loc)
        if sname_raw.lower() == TSV_VOID_NAME:
            for name in names:
                builder.add_void(name, line)
            continue
        if not sname_raw:
            raise OntologyError(f"{loc}: empty source class cell")
        sname = builder.source_row(sname_raw, line)
        for name in names:
            builder.add(sname, name, line)
    return builder.finish(header_line, settings)


def pairwise_columns(path: str | Path, text: str) -> tuple[str, str] | None:
    """``(from, to)`` when ``path`` is an MSeg pairwise file: named ``<from>_to_<to>.tsv``
    with the header ``<from>\t<to>`` (one row per ``<from>`` class naming the one ``<to>``
    class it becomes, e.g. mseg-api's ``camvid-32_to_camvid-11.tsv``); else ``None``."""
    m = re.match(r"^(.+)_to_(.+)$", Path(path).stem)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if m is None or first.startswith("#"):
        return None
    cells = [c.strip() for c in first.split("\t")]
    return (m.group(1), m.group(2)) if cells == [m.group(1), m.group(2)] else None


def ontology_from_pairwise_tsv(
    text: str,
    *,
    source: Taxonomy | str,
    extra: Taxonomy | str,
    origin: str = "<tsv>",
    base_dir: Path | None = None,
    strict: bool = False,
) -> Ontology:
    """Read an MSeg pairwise remapping ``<from>_to_<to>.tsv``: the header names the two
    taxonomies, each row a ``<from>`` (extra) class and the one ``<to>`` (source) class it
    becomes; ``unlabeled`` as the target (when the source has no such train class) writes
    the label as ignore. ``source``/``extra`` are taxonomies or names (MSeg's names
    resolve through the built-ins' aliases: ``camvid-11`` -> ``camvid11``).

    Raises:
        OntologyError: naming file, line and offending name.
    """
    src, ext, _ = resolve_sides(source, extra, {}, origin, base_dir)
    builder = TableBuilder(src, ext, origin, strict)
    lines = text.splitlines()
    header_idx = next(i for i, ln in enumerate(lines) if ln.strip())
    for i, raw in enumerate(lines[header_idx + 1 :], start=header_idx + 2):
        if not raw.strip():
            continue
        cells = [c.strip() for c in raw.split("\t")]
        if len(cells) != 2 or not all(cells):
            raise OntologyError(
                f"{origin}:{i}: a row needs two cells, <from> and <to>, got {raw!r}"
            )
        name, target = cells
        try:
            scls = src.get(target)
        except TaxonomyError:
            scls = None
        if scls is None or scls.ignore:
            if target.lower() != TSV_VOID_NAME and scls is None:
                raise OntologyError(
                    f"{origin}:{i}: {target!r} is not a class of {src.name!r} (nor 'unlabeled')"
                )
            builder.add_void(name, i)
            continue
        builder.seen_sources.setdefault(scls.name, i)
        builder.add(scls.name, name, i)
    for sname in src.train_names:  # a source class no row reaches has an empty row
        builder.seen_sources.setdefault(sname, header_idx + 1)
    return builder.finish(header_idx + 1, TableSettings())
