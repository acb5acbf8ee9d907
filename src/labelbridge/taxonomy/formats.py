"""Ontology mappings as tables: the reference CSV (``master_labels_<source>.csv``) and an
MSeg-style TSV, next to the YAML form of :mod:`labelbridge.taxonomy.ontology`.

Both tables have **one row per source train class** listing the extra labels whose pixels
may be that class, plus one *void* row listing the extra labels written as ignore. The
full layout is in ``docs/ontology-format.md``; in short:

Reference CSV (UniBwTAS/data-priors, read with ``csv.reader``; its loader skips the first
row)::

    ,name,,,
    0,road,Road,LaneMkgsDriv,
    1,sidewalk,Sidewalk,,
    ...
    255,void,Animal,Void,

column 1 = source train id (``255`` = the void row), column 2 = source class name, then the
extra label names; rows are padded with empty cells to one width.

MSeg-style TSV (MSeg ``MSeg_master.tsv``: one row per universal class, one column per
dataset, ``{a, b}`` for several classes, empty cell for none)::

    cityscapes<TAB>camvid11
    road<TAB>Road
    building<TAB>{Building, Fence}
    unlabeled<TAB>{Void}

What neither table can carry - the taxonomy names, the ``unlabelled`` policy and projection
overrides - is written as ``# key: value`` comment lines above the table (``metadata=True``,
the default) or given as arguments when reading. With the metadata, YAML -> CSV -> YAML and
YAML -> TSV -> YAML give the same relation (:meth:`Ontology.same_as`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import OntologyError, TaxonomyError, UserError
from labelbridge.taxonomy.ontology import IGNORE_ROW, UNLABELLED_POLICIES, Ontology
from labelbridge.taxonomy.registry import load_taxonomy, mapping_path
from labelbridge.taxonomy.taxonomy import Taxonomy
from labelbridge.yamlio import LinedYaml

logger = logging.getLogger(__name__)

#: Table formats understood by :func:`read_ontology` / :func:`write_ontology`.
FORMATS = ("yaml", "csv", "tsv")
#: Name written in the void row of the reference CSV (its first cell is ``IGNORE_INDEX``).
CSV_VOID_NAME = "void"
#: Source-column value of the void row in the TSV (MSeg's ``unlabeled`` universal row).
TSV_VOID_NAME = "unlabeled"
#: Keys of the ``# key: value`` metadata comment lines.
METADATA_KEYS = ("format", "source", "extra", "unlabelled", "projection")
_FORMAT_TAG = "labelbridge-ontology-1"
_META_RE = re.compile(r"^#\s*([A-Za-z_]+)\s*:(.*)$")
_EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}


# ---------------------------------------------------------------------------- helpers
def format_from_path(path: str | Path) -> str:
    """The table format of a file by its extension; built-in mapping names are YAML.

    Raises:
        UserError: unknown extension.
    """
    suffix = Path(str(path)).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if suffix == "":
        return "yaml"
    raise UserError(
        f"{path}: cannot tell the format from the extension {suffix!r}; use one of {FORMATS}"
    )


def _extra_lists(onto: Ontology) -> tuple[dict[str, list[str]], list[str]]:
    """For each source train class the extra labels listing it, and the void list."""
    per_source: dict[str, list[str]] = {name: [] for name in onto.source.train_names}
    void: list[str] = []
    for cls in onto.extra.classes:
        row = onto.rows.get(cls.name)
        if row is None:
            if cls.ignore and onto.unlabelled == "ignore":
                void.append(cls.name)
            continue
        if row == IGNORE_ROW:
            void.append(cls.name)
            continue
        for sname in row:
            per_source[sname].append(cls.name)
    return per_source, void


def _metadata_lines(onto: Ontology, layout: str) -> list[str]:
    lines = [
        f"# labelbridge ontology mapping, {layout}",
        f"# format: {_FORMAT_TAG}",
        f"# source: {onto.source.name}",
        f"# extra: {onto.extra.name}",
        f"# unlabelled: {onto.unlabelled}",
    ]
    if onto.projection_overrides:
        lines.append(f"# projection: {json.dumps(onto.projection_overrides, ensure_ascii=False)}")
    return lines


def _split_metadata(text: str, origin: str) -> tuple[dict[str, tuple[str, int]], list[str], int]:
    """Leading ``#`` lines -> ``{key: (value, line)}``, the remaining lines, first line no."""
    lines = text.splitlines()
    meta: dict[str, tuple[str, int]] = {}
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        m = _META_RE.match(lines[i])
        if m:
            key, value = m.group(1), m.group(2).strip()
            if key not in METADATA_KEYS:
                raise OntologyError(
                    f"{origin}:{i + 1}: unknown metadata key {key!r} (expected {METADATA_KEYS})"
                )
            if key in meta:
                raise OntologyError(
                    f"{origin}:{i + 1}: metadata key {key!r} given twice (first on line {meta[key][1]})"
                )
            meta[key] = (value, i + 1)
        i += 1
    if "format" in meta and meta["format"][0] != _FORMAT_TAG:
        value, line = meta["format"]
        raise OntologyError(
            f"{origin}:{line}: unsupported format {value!r} (this version reads {_FORMAT_TAG!r})"
        )
    return meta, lines[i:], i + 1


def _resolve_taxonomy(
    role: str,
    given: Taxonomy | str | None,
    meta: dict[str, tuple[str, int]],
    origin: str,
    base_dir: Path | None,
) -> tuple[Taxonomy, int | None]:
    """The source/extra taxonomy from the argument and/or the metadata (which must agree)."""
    line = meta[role][1] if role in meta else None
    where = f"{origin}:{line}" if line else origin
    if isinstance(given, Taxonomy):
        if role in meta and meta[role][0] != given.name:
            raise OntologyError(
                f"{where}: the file says {role} {meta[role][0]!r} but taxonomy {given.name!r} was given"
            )
        return given, line
    name = given if given is not None else (meta[role][0] if role in meta else None)
    if name is None:
        raise OntologyError(
            f"{origin}: the {role} taxonomy is not named in the file (no '# {role}: ...' line); "
            f"give it as an argument (--{role})"
        )
    if given is not None and role in meta and meta[role][0] != str(given):
        raise OntologyError(
            f"{where}: the file says {role} {meta[role][0]!r} but {given!r} was given"
        )
    try:
        return load_taxonomy(str(name), base_dir=base_dir), line
    except TaxonomyError as exc:
        raise OntologyError(f"{where}: {exc}") from None


def _resolve_policy(
    given: str | None, meta: dict[str, tuple[str, int]], origin: str
) -> tuple[str | None, int | None]:
    if "unlabelled" in meta:
        value, line = meta["unlabelled"]
        if given is not None and given != value:
            raise OntologyError(
                f"{origin}:{line}: the file says unlabelled {value!r} but {given!r} was given"
            )
        return value, line
    return given, None


def _resolve_projection(
    given: dict[str, str] | None, meta: dict[str, tuple[str, int]], origin: str
) -> tuple[dict[str, str], int | None]:
    if "projection" not in meta:
        return dict(given or {}), None
    value, line = meta["projection"]
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise OntologyError(f"{origin}:{line}: projection must be a JSON object: {exc}") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise OntologyError(
            f"{origin}:{line}: projection must map source class names to extra label names"
        )
    if given is not None and dict(given) != parsed:
        raise OntologyError(f"{origin}:{line}: the file's projection differs from the one given")
    return parsed, line


def _canonical_extra(extra: Taxonomy, name: str) -> str:
    try:
        return extra.get(name).name
    except TaxonomyError:
        return name  # Ontology.from_dict reports it with the line


class _TableBuilder:
    """Collects rows read from a table into the plain data of :meth:`Ontology.from_dict`,
    remembering the line of every entry for messages."""

    def __init__(self, source: Taxonomy, extra: Taxonomy, origin: str) -> None:
        self.source, self.extra, self.origin = source, extra, origin
        self.rows: dict[str, list[str]] = {}
        self.void: dict[str, int] = {}
        self.lines: dict[tuple, int] = {}
        self.seen_sources: dict[str, int] = {}

    def source_row(self, name: str, line: int) -> str:
        try:
            cls = self.source.get(name)
        except TaxonomyError as exc:
            raise OntologyError(f"{self.origin}:{line}: unknown source class: {exc}") from None
        if cls.ignore:
            raise OntologyError(
                f"{self.origin}:{line}: source class {cls.name!r} is ignored in {self.source.name!r} "
                f"and cannot have a row"
            )
        if cls.name in self.seen_sources:
            raise OntologyError(
                f"{self.origin}:{line}: source class {cls.name!r} has a second row "
                f"(first on line {self.seen_sources[cls.name]})"
            )
        self.seen_sources[cls.name] = line
        return cls.name

    def add(self, source_name: str, extra_name: str, line: int) -> None:
        key = _canonical_extra(self.extra, extra_name)
        row = self.rows.setdefault(key, [])
        if source_name in row:
            raise OntologyError(
                f"{self.origin}:{line}: extra label {extra_name!r} listed twice in the row of {source_name!r}"
            )
        self.lines.setdefault(("mapping", key), line)
        self.lines[("mapping", key, len(row))] = line
        row.append(source_name)

    def add_void(self, extra_name: str, line: int) -> None:
        key = _canonical_extra(self.extra, extra_name)
        if key in self.void:
            raise OntologyError(
                f"{self.origin}:{line}: extra label {extra_name!r} listed twice in the void row"
            )
        self.void[key] = line

    def finish(
        self,
        *,
        header_line: int,
        policy: str | None,
        policy_line: int | None,
        projection: dict[str, str],
        projection_line: int | None,
        source_line: int | None,
    ) -> Ontology:
        missing = [n for n in self.source.train_names if n not in self.seen_sources]
        if missing:
            raise OntologyError(
                f"{self.origin}:{header_line}: no row for the source classes {missing}"
            )
        mapping: dict[str, Any] = {}
        for key, row in self.rows.items():
            if key in self.void:
                # reference files list a label under classes *and* void ("may also be something
                # outside the source taxonomy"); a prior can only use the classes.
                logger.info(
                    "%s: %r is listed under source classes and void; using the classes",
                    self.origin,
                    key,
                )
            mapping[key] = list(row)
        for key, line in self.void.items():
            if key not in mapping:
                mapping[key] = IGNORE_ROW
                self.lines.setdefault(("mapping", key), line)
        if policy is None:
            ignored = {c.name for c in self.extra.classes if c.ignore}
            policy = (
                "constrained"
                if any(k in ignored and isinstance(v, list) for k, v in mapping.items())
                else "ignore"
            )
            logger.debug("%s: no unlabelled policy given; inferred %r", self.origin, policy)
        if policy not in UNLABELLED_POLICIES:
            where = f"{self.origin}:{policy_line}" if policy_line else self.origin
            raise OntologyError(
                f"{where}: unlabelled must be one of {UNLABELLED_POLICIES}, got {policy!r}"
            )
        self.lines[("mapping",)] = header_line
        self.lines[("unlabelled",)] = policy_line or header_line
        self.lines[("source",)] = source_line or header_line
        for sname in projection:
            self.lines[("projection", sname)] = projection_line or header_line
        self.lines[("projection",)] = projection_line or header_line
        data: dict[str, Any] = {
            "source": self.source.name,
            "extra": self.extra.name,
            "unlabelled": policy,
            "mapping": mapping,
        }
        if projection:
            data["projection"] = projection
        where = LinedYaml(data=data, lines=self.lines, path=self.origin)
        return Ontology.from_dict(
            data, where=where, origin=self.origin, source=self.source, extra=self.extra
        )


# ---------------------------------------------------------------------------- CSV
def ontology_to_csv(onto: Ontology, *, metadata: bool = True) -> str:
    """The mapping in the reference ``master_labels_<source>.csv`` layout.

    Args:
        onto: the mapping.
        metadata: write ``# key: value`` lines (taxonomy names, policy, projection overrides)
            above the table; without them the text is exactly the reference layout, which
            its own loader reads, and the policy/projection must be given when reading back.

    Returns:
        CSV text, ``\\n`` line ends.
    """
    per_source, void = _extra_lists(onto)
    body: list[list[str]] = [
        [str(k), name, *per_source[name]] for k, name in enumerate(onto.source.train_names)
    ]
    body.append([str(IGNORE_INDEX), CSV_VOID_NAME, *void])
    width = max(2, *(len(r) for r in body))
    table = [["", "name"] + [""] * (width - 2)] + [r + [""] * (width - len(r)) for r in body]
    buf = io.StringIO()
    if metadata:
        buf.write(
            "\n".join(_metadata_lines(onto, "reference CSV layout (master_labels_<source>.csv)"))
            + "\n"
        )
    csv.writer(buf, lineterminator="\n").writerows(table)
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
) -> Ontology:
    """Read a mapping from the reference CSV layout (see module doc).

    Args:
        text: the CSV text (optionally with ``# key: value`` metadata lines on top).
        source, extra: taxonomies (objects, built-in names or paths); needed when the file
            has no metadata, and must agree with it when it has.
        unlabelled: policy; default from the metadata, else inferred: ``constrained`` when an
            ignored extra class is listed under a source class, otherwise ``ignore``.
        projection: projection overrides ``{source class: extra label}`` (see the YAML form).
        origin: file name for messages.
        base_dir: folder that relative taxonomy paths are resolved against.

    Raises:
        OntologyError: naming the file, line and offending name (unknown source class or
            extra label, wrong id, duplicate row, missing rows, uncovered extra labels, ...).
    """
    meta, lines, first = _split_metadata(text, origin)
    src, source_line = _resolve_taxonomy("source", source, meta, origin, base_dir)
    ext, _ = _resolve_taxonomy("extra", extra, meta, origin, base_dir)
    policy, policy_line = _resolve_policy(unlabelled, meta, origin)
    proj, proj_line = _resolve_projection(projection, meta, origin)
    builder = _TableBuilder(src, ext, origin)
    rows = list(csv.reader(lines))
    header_line = first
    start = 0
    if rows and rows[0] and not rows[0][0].strip().lstrip("-").isdigit():
        start = 1  # the header row (",name,,,"), skipped as the reference loader does
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
        names = [c for c in cells[2:] if c]
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
    return builder.finish(
        header_line=header_line,
        policy=policy,
        policy_line=policy_line,
        projection=proj,
        projection_line=proj_line,
        source_line=source_line,
    )


# ---------------------------------------------------------------------------- TSV
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


def ontology_to_tsv(onto: Ontology, *, metadata: bool = True) -> str:
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
    per_source, void = _extra_lists(onto)
    lines = _metadata_lines(onto, "MSeg-style TSV layout") if metadata else []
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
) -> Ontology:
    """Read a mapping from an MSeg-style TSV (see module doc).

    The source column is ``source_column``, else the column named like the source taxonomy,
    else ``universal``, else the first; the extra column is ``extra_column``, else the one
    named like the extra taxonomy, else the second of a two-column file. Without metadata
    and arguments, the taxonomies are taken from a two-column header (built-in names).

    Raises:
        OntologyError: naming file, line and offending name (see :func:`ontology_from_csv`).
    """
    meta, lines, first = _split_metadata(text, origin)
    header_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if header_idx is None:
        raise OntologyError(f"{origin}: no header row")
    header_line = first + header_idx
    header = lines[header_idx].split("\t")
    where = f"{origin}:{header_line}"
    if source is None and "source" not in meta and len(header) >= 1:
        source = header[0].strip()
    if extra is None and "extra" not in meta and len(header) == 2:
        extra = header[1].strip()
    src, source_line = _resolve_taxonomy("source", source, meta, origin, base_dir)
    ext, _ = _resolve_taxonomy("extra", extra, meta, origin, base_dir)
    scol = _pick_column(header, source_column, [src.name, "universal"], "source", where)
    scol = 0 if scol < 0 else scol
    ecol = _pick_column(header, extra_column, [ext.name], "extra", where)
    if ecol < 0:
        if len(header) != 2:
            raise OntologyError(
                f"{where}: cannot tell which column holds {ext.name!r} labels in {header}; give extra_column"
            )
        ecol = 1 - scol
    policy, policy_line = _resolve_policy(unlabelled, meta, origin)
    proj, proj_line = _resolve_projection(projection, meta, origin)
    builder = _TableBuilder(src, ext, origin)
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
    return builder.finish(
        header_line=header_line,
        policy=policy,
        policy_line=policy_line,
        projection=proj,
        projection_line=proj_line,
        source_line=source_line,
    )


# ---------------------------------------------------------------------------- YAML
class _FlowListDumper(yaml.SafeDumper):
    """Lists in flow style (``[a, b]``), mappings in block style, as in the built-in files."""


_FlowListDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def ontology_to_yaml(onto: Ontology) -> str:
    """The mapping in the YAML form of :mod:`labelbridge.taxonomy.ontology`."""
    return yaml.dump(
        onto.to_dict(), Dumper=_FlowListDumper, sort_keys=False, allow_unicode=True, width=100
    )


# ---------------------------------------------------------------------------- files
def read_ontology(
    path: str | Path,
    *,
    fmt: str | None = None,
    source: Taxonomy | str | None = None,
    extra: Taxonomy | str | None = None,
    unlabelled: str | None = None,
    projection: dict[str, str] | None = None,
) -> Ontology:
    """Load a mapping file in any of :data:`FORMATS` (by extension unless ``fmt``); a name
    without extension is a built-in (YAML) mapping.

    Raises:
        UserError / OntologyError: unreadable file, unknown format, invalid mapping.
    """
    fmt = fmt or format_from_path(path)
    if fmt not in FORMATS:
        raise UserError(f"unknown mapping format {fmt!r}; use one of {FORMATS}")
    if fmt == "yaml":
        if unlabelled is not None or projection is not None:
            raise UserError(f"{path}: --unlabelled/--projection apply to CSV/TSV input only")
        kwargs: dict[str, Any] = {}
        if source is not None:
            kwargs["source"] = source if isinstance(source, Taxonomy) else load_taxonomy(source)
        if extra is not None:
            kwargs["extra"] = extra if isinstance(extra, Taxonomy) else load_taxonomy(extra)
        return Ontology.from_file(mapping_path(path), **kwargs)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read: {exc}") from None
    reader = ontology_from_csv if fmt == "csv" else ontology_from_tsv
    return reader(
        text,
        source=source,
        extra=extra,
        unlabelled=unlabelled,
        projection=projection,
        origin=str(p),
        base_dir=p.parent,
    )


def ontology_to_text(onto: Ontology, fmt: str, *, metadata: bool = True) -> str:
    """The mapping as text in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "yaml":
        return ontology_to_yaml(onto)
    if fmt == "csv":
        return ontology_to_csv(onto, metadata=metadata)
    if fmt == "tsv":
        return ontology_to_tsv(onto, metadata=metadata)
    raise UserError(f"unknown mapping format {fmt!r}; use one of {FORMATS}")


def write_ontology(
    onto: Ontology, path: str | Path, *, fmt: str | None = None, metadata: bool = True
) -> str:
    """Write a mapping file (format by extension unless ``fmt``); returns the format used."""
    fmt = fmt or format_from_path(path)
    text = ontology_to_text(onto, fmt, metadata=metadata)
    Path(path).write_text(text, encoding="utf-8")
    return fmt
