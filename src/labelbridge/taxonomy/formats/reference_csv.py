"""The reference's mapping table, ``master_labels_<source>.csv`` (UniBwTAS/data-priors),
and its ``labels.csv`` companion.

Layout (read with ``csv.reader``; the reference loader skips the first row)::

    ,name,,,
    0,road,Road,LaneMkgsDriv,
    1,sidewalk,Sidewalk,,
    ...
    255,void,Animal,Void,

column 1 = source train id (``255`` = the void row), column 2 = source class name, then the
extra label names; rows are padded with empty cells to one width. The metadata
(:mod:`~labelbridge.taxonomy.formats.metadata`) is written as ``key: value`` cells of the
header row, which the reference loader does not read, or as ``# key: value`` lines on top.
The path convention ``datasets/<dataset>/lists/master_labels_<source>.csv`` names the two
taxonomies of a file without metadata (:func:`reference_taxonomies`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import OntologyError, TaxonomyError
from labelbridge.taxonomy.formats.metadata import (
    FORMAT_TAG,
    Metadata,
    metadata_entries,
    put_meta,
    resolve_settings,
    resolve_sides,
    split_metadata,
)
from labelbridge.taxonomy.formats.table import TableBuilder, extra_lists
from labelbridge.taxonomy.ontology import Ontology
from labelbridge.taxonomy.registry import builtin_taxonomy_name
from labelbridge.taxonomy.taxonomy import Taxonomy

#: Name written in the void row of the reference CSV (its first cell is ``IGNORE_INDEX``).
CSV_VOID_NAME = "void"
#: Prefix of the reference's mapping file names, ``master_labels_<source>.csv``.
REFERENCE_PREFIX = "master_labels"
#: Columns of the reference's ``labels.csv`` (its loader needs name, id, trainId,
#: hasInstances).
LABELS_CSV_COLUMNS = ("", "name", "id", "trainId", "category", "categoryId",
                      "hasInstances", "ignoreInEval", "color")  # fmt: skip


def reference_taxonomies(path: str | Path) -> tuple[str | None, str | None]:
    """Source and extra taxonomy names from the reference's path convention
    ``datasets/<dataset>/lists/master_labels_<source>.csv`` (the folder and source names
    are matched to built-in taxonomies through their aliases, e.g. ``IDD``,
    ``mapillary``); ``None`` for a part that does not follow it or names no built-in.

    ``master_labels.csv`` without a suffix is the reference's older 20-class taxonomy
    (built-in alias ``master_labels``).
    """
    p = Path(path)
    stem = p.stem
    source = None
    if stem == REFERENCE_PREFIX:
        source = REFERENCE_PREFIX
    elif stem.startswith(REFERENCE_PREFIX + "_"):
        source = stem[len(REFERENCE_PREFIX) + 1 :]
    extra = p.parent.parent.name if p.parent.name == "lists" else None
    return _builtin_or_none(source), _builtin_or_none(extra)


def _builtin_or_none(name: str | None) -> str | None:
    """The built-in taxonomy ``name`` stands for (through aliases), else ``None``."""
    try:
        return builtin_taxonomy_name(name) if name else None
    except TaxonomyError:
        return None


def _header_metadata(cells: list[str], line: int, meta: Metadata, origin: str) -> None:
    """Metadata written in the CSV header row (after the format tag cell), where the
    reference loader, which skips row 1, does not see it. Adds to ``meta``."""
    tags = [i for i, c in enumerate(cells) if c.strip() == FORMAT_TAG]
    if not tags:
        others = [c for c in cells if c.strip().startswith("labelbridge-ontology-")]
        if others:
            raise OntologyError(
                f"{origin}:{line}: unsupported format {others[0].strip()!r} "
                f"(this version reads {FORMAT_TAG!r})"
            )
        return
    if "format" in meta:
        raise OntologyError(f"{origin}:{line}: metadata both in comment lines and the header row")
    meta["format"] = (FORMAT_TAG, line)
    for cell in cells[tags[0] + 1 :]:
        if not cell.strip():
            continue
        key, sep, value = cell.partition(":")
        problem = f"header cell {cell!r} is no 'key: value' metadata"
        put_meta(meta, key.strip() if sep else "", value.strip(), line, origin, problem)


def _metadata_cells(onto: Ontology, base_dir: Path | None) -> list[str]:
    """The metadata as header-row cells: the format tag, then ``key: value`` cells."""
    return [FORMAT_TAG] + [f"{key}: {value}" for key, value in metadata_entries(onto, base_dir)]


def ontology_to_csv(onto: Ontology, *, metadata: bool = True, base_dir: Path | None = None) -> str:
    """The mapping in the reference ``master_labels_<source>.csv`` layout.

    Args:
        onto: the mapping.
        metadata: write the taxonomy names, policy and projection overrides as
            ``key: value`` cells in the header row, which the reference loader skips
            (so the file stays readable there); without them the policy and projection
            must be given when reading back.
        base_dir: folder the file is written to (taxonomies given by path are named
            relative to it).

    Policies the table cannot express are written out: ``unconstrained`` lists the
    ignored extra classes under every source class; rows with the void option are
    listed under their classes and under the ``void`` row.

    Returns:
        CSV text, ``\\n`` line ends.
    """
    per_source, void = extra_lists(onto)
    body: list[list[str]] = [
        [str(k), name, *per_source[name]] for k, name in enumerate(onto.source.train_names)
    ]
    body.append([str(IGNORE_INDEX), CSV_VOID_NAME, *void])
    header = ["", "name", *(_metadata_cells(onto, base_dir) if metadata else [])]
    width = max(len(header), *(len(r) for r in body))
    table = [header + [""] * (width - len(header))] + [r + [""] * (width - len(r)) for r in body]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(table)
    return buf.getvalue()


def labels_csv_text(tax: Taxonomy) -> str:
    """The extra taxonomy as the reference's ``labels.csv`` (next to the mapping CSV):
    one row per class with its raw id and train id (``255`` when ignored)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LABELS_CSV_COLUMNS)
    for i, c in enumerate(tax.classes):
        color = "#{:02x}{:02x}{:02x}".format(*c.color)
        writer.writerow(
            [i, c.name, c.id, c.train_id, "", "", "", "True" if c.ignore else "False", color]
        )
    return buf.getvalue()


def ontology_from_csv(
    text: str,
    *,
    source: Taxonomy | str | None = None,
    extra: Taxonomy | str | None = None,
    unlabelled: str | None = None,
    projection: dict[str, str] | None = None,
    origin: str = "<csv>",
    base_dir: Path | None = None,
    inferred: tuple[str | None, str | None] = (None, None),
    strict: bool = False,
) -> Ontology:
    """Read a mapping from the reference CSV layout (see module doc).

    Args:
        text: the CSV text (metadata in the header row or as ``# key: value`` lines on top).
        source, extra: taxonomies (objects, built-in names or paths); needed when the file
            has no metadata and ``inferred`` has none, and must agree with the metadata.
        unlabelled: policy; default from the metadata, else inferred: ``constrained`` when an
            ignored extra class is listed under a source class, otherwise ``ignore``.
        projection: projection overrides ``{source class: extra label}`` (see the YAML form);
            default from the metadata, else chosen by
            :func:`~labelbridge.taxonomy.formats.table.projection_rule_choice`.
        origin: file name for messages.
        base_dir: folder that relative taxonomy paths are resolved against.
        inferred: ``(source, extra)`` names from the file's path
            (:func:`reference_taxonomies`), used when neither argument nor metadata names them.
        strict: an extra label name that is not in the extra taxonomy is an error instead
            of being skipped and listed in ``import_report``.

    A label listed under source classes and under ``void`` gets the void option; a label
    in no row is written as ignore (the reference's default); both are reported in the
    result's ``import_report``, as are skipped names and projection choices.

    Raises:
        OntologyError: naming the file, line and offending name (unknown source class,
            wrong id, duplicate row, missing source rows, unknown extra label if strict, ...).
    """
    meta, lines, first = split_metadata(text, origin)
    rows = list(csv.reader(lines))
    header_line = first
    start = 0
    if rows and rows[0] and not rows[0][0].strip().lstrip("-").isdigit():
        start = 1  # the header row (",name,,,"), skipped as the reference loader does
        _header_metadata(rows[0], first, meta, origin)
    src, ext, source_line = resolve_sides(source, extra, meta, origin, base_dir, inferred)
    settings = resolve_settings(unlabelled, projection, meta, origin, source_line)
    builder = TableBuilder(src, ext, origin, strict)
    for offset, row in enumerate(rows[start:], start=start):
        line = first + offset
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) < 2:
            raise OntologyError(
                f"{origin}:{line}: a row needs at least an id and a name, got {row!r}"
            )
        try:
            rid = int(cells[0])
        except ValueError:
            raise OntologyError(
                f"{origin}:{line}: first cell must be the source train id, got {cells[0]!r}"
            ) from None
        names = [c for c in row[2:] if c.strip()]
        if rid == IGNORE_INDEX:
            for name in names:
                builder.add_void(name, line)
            continue
        sname = builder.source_row(cells[1], line)
        if src.train_id_of(sname) != rid:
            raise OntologyError(
                f"{origin}:{line}: source class {sname!r} has train id {src.train_id_of(sname)} "
                f"in {src.name!r}, but the row says {rid}"
            )
        for name in names:
            builder.add(sname, name, line)
    return builder.finish(header_line, settings)
