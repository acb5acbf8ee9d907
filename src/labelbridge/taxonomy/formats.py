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
from labelbridge.files import write_text_atomic
from labelbridge.taxonomy.ontology import (
    IGNORE_ROW,
    UNLABELLED_POLICIES,
    Ontology,
    taxonomy_reference,
)
from labelbridge.taxonomy.registry import builtin_taxonomy_name, load_taxonomy, mapping_path
from labelbridge.taxonomy.taxonomy import Taxonomy, normalize_name
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
    """For each source train class the extra labels listing it, and the void list.

    Everything is written out explicitly: ignored extra classes under ``ignore`` go to
    the void list, under ``unconstrained`` under every source class; a row with the void
    option is listed under its classes and under void."""
    per_source: dict[str, list[str]] = {name: [] for name in onto.source.train_names}
    void: list[str] = []
    for cls in onto.extra.classes:
        row = onto.rows.get(cls.name)
        if cls.ignore and onto.unlabelled != "constrained":
            if onto.unlabelled == "ignore":
                void.append(cls.name)
            else:
                for sname in per_source:
                    per_source[sname].append(cls.name)
            continue
        if row is None or row == IGNORE_ROW:
            void.append(cls.name)
            continue
        for sname in row:
            if sname == IGNORE_ROW:
                void.append(cls.name)
            else:
                per_source[sname].append(cls.name)
    return per_source, void


def _metadata_lines(onto: Ontology, layout: str, base_dir: Path | None = None) -> list[str]:
    lines = [
        f"# labelbridge ontology mapping, {layout}",
        f"# format: {_FORMAT_TAG}",
        f"# source: {taxonomy_reference(onto.source, base_dir)}",
        f"# extra: {taxonomy_reference(onto.extra, base_dir)}",
        f"# unlabelled: {onto.unlabelled}",
    ]
    if onto.projection_overrides:
        lines.append(f"# projection: {json.dumps(onto.projection_overrides, ensure_ascii=False)}")
    return lines


def _put_meta(
    meta: dict[str, tuple[str, int]], key: str, value: str, line: int, origin: str, what: str
) -> None:
    """Add one metadata entry, refusing unknown and repeated keys."""
    if key not in METADATA_KEYS:
        raise OntologyError(f"{origin}:{line}: {what} (expected keys {METADATA_KEYS})")
    if key in meta:
        raise OntologyError(
            f"{origin}:{line}: metadata key {key!r} given twice (first on line {meta[key][1]})"
        )
    meta[key] = (value, line)


def _split_metadata(text: str, origin: str) -> tuple[dict[str, tuple[str, int]], list[str], int]:
    """Leading ``#`` lines -> ``{key: (value, line)}``, the remaining lines, first line no."""
    lines = text.splitlines()
    meta: dict[str, tuple[str, int]] = {}
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        m = _META_RE.match(lines[i])
        if m:
            key, value = m.group(1), m.group(2).strip()
            _put_meta(meta, key, value, i + 1, origin, f"unknown metadata key {key!r}")
        i += 1
    if "format" in meta and meta["format"][0] != _FORMAT_TAG:
        value, line = meta["format"]
        raise OntologyError(
            f"{origin}:{line}: unsupported format {value!r} (this version reads {_FORMAT_TAG!r})"
        )
    return meta, lines[i:], i + 1


def _same_taxonomy(value: str, tax: Taxonomy, base_dir: Path | None) -> bool:
    """Whether a file's ``source:``/``extra:`` value names ``tax`` (by name, alias or path)."""
    if value == tax.name:
        return True
    try:
        if builtin_taxonomy_name(value) == tax.name and tax.origin is None:
            return True
    except TaxonomyError:
        return False
    if tax.origin is not None:
        cand = Path(value) if base_dir is None or Path(value).is_absolute() else base_dir / value
        return cand.resolve() == tax.origin
    return False


def _header_metadata(
    cells: list[str], line: int, meta: dict[str, tuple[str, int]], origin: str
) -> None:
    """Metadata written in the CSV header row (after the format tag cell), where the
    reference loader, which skips row 1, does not see it. Adds to ``meta``."""
    tags = [i for i, c in enumerate(cells) if c.strip() == _FORMAT_TAG]
    if not tags:
        others = [c for c in cells if c.strip().startswith("labelbridge-ontology-")]
        if others:
            raise OntologyError(
                f"{origin}:{line}: unsupported format {others[0].strip()!r} "
                f"(this version reads {_FORMAT_TAG!r})"
            )
        return
    if "format" in meta:
        raise OntologyError(f"{origin}:{line}: metadata both in comment lines and the header row")
    meta["format"] = (_FORMAT_TAG, line)
    for cell in cells[tags[0] + 1 :]:
        if not cell.strip():
            continue
        key, sep, value = cell.partition(":")
        problem = f"header cell {cell!r} is no 'key: value' metadata"
        _put_meta(meta, key.strip() if sep else "", value.strip(), line, origin, problem)


def _resolve_taxonomy(
    role: str,
    given: Taxonomy | str | None,
    meta: dict[str, tuple[str, int]],
    origin: str,
    base_dir: Path | None,
    fallback: str | None = None,
) -> tuple[Taxonomy, int | None]:
    """The source/extra taxonomy from the argument and/or the metadata (which must agree),
    else ``fallback`` (inferred from the reference's path convention)."""
    line = meta[role][1] if role in meta else None
    where = f"{origin}:{line}" if line else origin
    if isinstance(given, Taxonomy):
        if role in meta and not _same_taxonomy(meta[role][0], given, base_dir):
            raise OntologyError(
                f"{where}: the file says {role} {meta[role][0]!r} but taxonomy {given.name!r} was given"
            )
        return given, line
    name = given if given is not None else (meta[role][0] if role in meta else fallback)
    if name is None:
        raise OntologyError(
            f"{origin}: the {role} taxonomy is not named in the file (no metadata) nor by the "
            f"reference's path convention (datasets/<dataset>/lists/master_labels_<source>.csv "
            f"with built-in names); give it as an argument (--{role})"
        )
    try:
        tax = load_taxonomy(str(name), base_dir=base_dir)
    except TaxonomyError as exc:
        raise OntologyError(f"{where}: {exc}") from None
    if given is not None and role in meta and not _same_taxonomy(meta[role][0], tax, base_dir):
        raise OntologyError(
            f"{where}: the file says {role} {meta[role][0]!r} but {given!r} was given"
        )
    return tax, line


#: Prefix of the reference's mapping file names, ``master_labels_<source>.csv``.
REFERENCE_PREFIX = "master_labels"


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
    try:
        source = builtin_taxonomy_name(source) if source else None
    except TaxonomyError:
        source = None
    try:
        extra = builtin_taxonomy_name(extra) if extra else None
    except TaxonomyError:
        extra = None
    return source, extra


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
        return (dict(given) if given is not None else None), None
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


def projection_rule_choice(
    source_name: str, owners: list[str], rows: dict[str, Any], extra: Taxonomy
) -> str:
    """The documented rule for a source class that several extra labels allow (tables
    cannot say which one it projects onto for evaluation): the label allowing the
    fewest source classes, then the one whose name matches the source class loosely,
    then the lowest extra train id."""

    def key(name: str) -> tuple[int, int, int]:
        row = rows.get(name)
        size = len([n for n in row if n != IGNORE_ROW]) if isinstance(row, list) else 0
        same = 0 if normalize_name(name) == normalize_name(source_name) else 1
        return (size, same, extra.train_id_of(name))

    return min(owners, key=key)


def rule_projection(rows: dict[str, Any], source: Taxonomy, extra: Taxonomy) -> dict[str, str]:
    """``{source class: extra label}`` by :func:`projection_rule_choice` for every source
    class that the rows of several non-ignored extra labels allow."""
    owners: dict[str, list[str]] = {}
    for cls in extra.train_classes:
        row = rows.get(cls.name)
        if isinstance(row, list):
            for sname in row:
                if sname != IGNORE_ROW:
                    owners.setdefault(sname, []).append(cls.name)
    return {
        sname: projection_rule_choice(sname, owners[sname], rows, extra)
        for sname in source.train_names
        if len(owners.get(sname, [])) > 1
    }


def import_notes(onto: Ontology, path: str | Path, shown: str, origin_note: str = "") -> str:
    """Notes for a mapping converted from the table at ``path``: its provenance
    (``origin_note``, e.g. the repository and licence) and what the import decided, with
    the path written as ``shown``."""
    lines = [
        f"Converted from {shown}{' ' + origin_note if origin_note else ''} by labelbridge's importer."
    ]
    lines += [line.replace(str(path), shown) for line in onto.import_report]
    if onto.name_matches:
        lines.append(
            f"{len(onto.name_matches)} spellings resolved through aliases, groups or loose "
            "matching (labelbridge ontology check -v lists them)."
        )
    return "\n".join(lines)


class _TableBuilder:
    """Collects rows read from a table into the plain data of :meth:`Ontology.from_dict`,
    remembering the line of every entry for messages, and what the import decided
    (:attr:`report`) where the table leaves something open.

    Args:
        strict: an extra label name that is not in the extra taxonomy is an error;
            otherwise it is skipped and reported, as the reference loader silently
            ignores names missing from its ``labels.csv``.
    """

    def __init__(self, source: Taxonomy, extra: Taxonomy, origin: str, strict: bool) -> None:
        self.source, self.extra, self.origin, self.strict = source, extra, origin, strict
        self.rows: dict[str, list[str]] = {}
        self.void: dict[str, int] = {}
        self.lines: dict[tuple, int] = {}
        self.seen_sources: dict[str, int] = {}
        self.cells: set[tuple[str, str]] = set()
        self.report: list[str] = []
        self.name_matches: list[str] = []

    def source_row(self, name: str, line: int) -> str:
        try:
            match = self.source.lookup(name)
        except TaxonomyError as exc:
            raise OntologyError(f"{self.origin}:{line}: unknown source class: {exc}") from None
        if len(match.classes) != 1:
            raise OntologyError(
                f"{self.origin}:{line}: {name!r} is a group of {self.source.name!r}, not one class"
            )
        cls = match.classes[0]
        if match.kind != "exact":
            self.name_matches.append(
                f"{self.origin}:{line}: {name!r} -> {cls.name!r} ({match.kind})"
            )
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

    def _extra_classes(self, name: str, line: int) -> list[str]:
        try:
            match = self.extra.lookup(name)
        except TaxonomyError as exc:
            if self.strict:
                raise OntologyError(f"{self.origin}:{line}: unknown extra label: {exc}") from None
            self.report.append(
                f"{self.origin}:{line}: skipped {name!r}: not a label of {self.extra.name!r} "
                "(the reference loader ignores names missing from its labels.csv)"
            )
            return []
        if match.kind != "exact":
            target = ", ".join(c.name for c in match.classes)
            self.name_matches.append(f"{self.origin}:{line}: {name!r} -> {target!r} ({match.kind})")
        return [c.name for c in match.classes]

    def _repeated(self, row: str, extra_name: str, line: int, what: str) -> bool:
        """A name written twice in one row: an error if strict, else reported and the
        repeat dropped (the reference loader's reading is the same either way)."""
        if (row, extra_name) not in self.cells:
            self.cells.add((row, extra_name))
            return False
        message = f"{self.origin}:{line}: extra label {extra_name!r} listed twice in {what}"
        if self.strict:
            raise OntologyError(message)
        self.report.append(message + "; the repeat is dropped")
        return True

    def add(self, source_name: str, extra_name: str, line: int) -> None:
        if self._repeated(source_name, extra_name, line, f"the row of {source_name!r}"):
            return
        for key in self._extra_classes(extra_name, line):
            row = self.rows.setdefault(key, [])
            if source_name in row:
                continue  # the same class reached through a group and its own name
            self.lines.setdefault(("mapping", key), line)
            self.lines[("mapping", key, len(row))] = line
            row.append(source_name)

    def add_void(self, extra_name: str, line: int) -> None:
        if self._repeated("", extra_name, line, "the void row"):
            return
        for key in self._extra_classes(extra_name, line):
            self.void.setdefault(key, line)

    def _choose_projection(self, mapping: dict[str, Any]) -> dict[str, str]:
        chosen = rule_projection(mapping, self.source, self.extra)
        if chosen:
            self.report.append(
                f"{self.origin}: projection (for evaluation in {self.extra.name!r}) chosen by "
                "the rule 'fewest allowed classes, then same name, then lowest train id' for "
                f"{len(chosen)} source classes: "
                + ", ".join(f"{k} -> {v}" for k, v in chosen.items())
            )
        return chosen

    def finish(
        self,
        *,
        header_line: int,
        policy: str | None,
        policy_line: int | None,
        projection: dict[str, str] | None,
        projection_line: int | None,
        source_line: int | None,
    ) -> Ontology:
        missing = [n for n in self.source.train_names if n not in self.seen_sources]
        if missing:
            raise OntologyError(
                f"{self.origin}:{header_line}: no row for the source classes {missing}"
            )
        mapping: dict[str, Any] = {}
        both = []
        for key, row in self.rows.items():
            if key in self.void:
                # listed under classes *and* void: one of these classes, or something
                # outside the source taxonomy (the void option)
                both.append(key)
                mapping[key] = [*row, IGNORE_ROW]
            else:
                mapping[key] = list(row)
        if both:
            self.report.append(
                f"{self.origin}: {len(both)} labels listed under source classes and void keep "
                f"both (the void option, see docs/ontology-format.md): {both}"
            )
        for key, line in self.void.items():
            if key not in mapping:
                mapping[key] = IGNORE_ROW
                self.lines.setdefault(("mapping", key), line)
        ignored = {c.name for c in self.extra.classes if c.ignore}
        if policy is None:
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
        if policy == "unconstrained":
            # written out explicitly as "every source class" (a table has no policy cell)
            everything = set(self.source.train_names)
            for key in sorted(ignored & set(mapping)):
                row = mapping[key]
                if not isinstance(row, list) or set(row) - {IGNORE_ROW} != everything:
                    raise OntologyError(
                        f"{self.origin}:{self.lines.get(('mapping', key), header_line)}: the "
                        f"ignored extra class {key!r} is listed, but not under every source "
                        "class, which 'unlabelled: unconstrained' means"
                    )
                del mapping[key]
        elif policy == "ignore":
            for key in sorted(ignored & set(mapping)):
                if mapping[key] == IGNORE_ROW:
                    del mapping[key]  # the policy says so already
        unlisted = [
            c.name
            for c in self.extra.classes
            if c.name not in mapping and (not c.ignore or policy == "constrained")
        ]
        for key in unlisted:
            mapping[key] = IGNORE_ROW
        if unlisted:
            self.report.append(
                f"{self.origin}: {len(unlisted)} labels of {self.extra.name!r} are in no row "
                f"and are written as ignore (the reference's default, void): {unlisted}"
            )
        if projection is None:
            projection = self._choose_projection(mapping)
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
        onto = Ontology.from_dict(
            data, where=where, origin=self.origin, source=self.source, extra=self.extra
        )
        onto.name_matches[:0] = self.name_matches
        onto.import_report = list(self.report)
        return onto


# ---------------------------------------------------------------------------- CSV
def _metadata_cells(onto: Ontology, base_dir: Path | None) -> list[str]:
    cells = [
        _FORMAT_TAG,
        f"source: {taxonomy_reference(onto.source, base_dir)}",
        f"extra: {taxonomy_reference(onto.extra, base_dir)}",
        f"unlabelled: {onto.unlabelled}",
    ]
    if onto.projection_overrides:
        cells.append(f"projection: {json.dumps(onto.projection_overrides, ensure_ascii=False)}")
    return cells


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
    per_source, void = _extra_lists(onto)
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


#: Columns of the reference's ``labels.csv`` (its loader needs name, id, trainId,
#: hasInstances).
LABELS_CSV_COLUMNS = ("", "name", "id", "trainId", "category", "categoryId",
                      "hasInstances", "ignoreInEval", "color")  # fmt: skip


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
            default from the metadata, else chosen by :func:`projection_rule_choice`.
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
    meta, lines, first = _split_metadata(text, origin)
    rows = list(csv.reader(lines))
    header_line = first
    start = 0
    if rows and rows[0] and not rows[0][0].strip().lstrip("-").isdigit():
        start = 1  # the header row (",name,,,"), skipped as the reference loader does
        _header_metadata(rows[0], first, meta, origin)
    src, source_line = _resolve_taxonomy("source", source, meta, origin, base_dir, inferred[0])
    ext, _ = _resolve_taxonomy("extra", extra, meta, origin, base_dir, inferred[1])
    policy, policy_line = _resolve_policy(unlabelled, meta, origin)
    proj, proj_line = _resolve_projection(projection, meta, origin)
    builder = _TableBuilder(src, ext, origin, strict)
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
    per_source, void = _extra_lists(onto)
    lines = _metadata_lines(onto, "MSeg-style TSV layout", base_dir) if metadata else []
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
    meta, lines, first = _split_metadata(text, origin)
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
    src, source_line = _resolve_taxonomy("source", source, meta, origin, base_dir, inferred[0])
    ext, _ = _resolve_taxonomy("extra", extra, meta, origin, base_dir, inferred[1])
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
    policy, policy_line = _resolve_policy(unlabelled, meta, origin)
    proj, proj_line = _resolve_projection(projection, meta, origin)
    builder = _TableBuilder(src, ext, origin, strict)
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
    src, _ = _resolve_taxonomy("source", source, {}, origin, base_dir)
    ext, _ = _resolve_taxonomy("extra", extra, {}, origin, base_dir)
    builder = _TableBuilder(src, ext, origin, strict)
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
    return builder.finish(
        header_line=header_idx + 1,
        policy=None,
        policy_line=None,
        projection=None,
        projection_line=None,
        source_line=None,
    )


# ---------------------------------------------------------------------------- YAML
class _FlowListDumper(yaml.SafeDumper):
    """Lists in flow style (``[a, b]``), mappings in block style, as in the built-in files."""


_FlowListDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def _literal_text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_FlowListDumper.add_representer(str, _literal_text)


def ontology_to_yaml(onto: Ontology, *, base_dir: Path | None = None) -> str:
    """The mapping in the YAML form of :mod:`labelbridge.taxonomy.ontology`; taxonomies
    that are not built in are named by path relative to ``base_dir`` (the folder it is
    written to)."""
    return yaml.dump(
        onto.to_dict(base_dir=base_dir),
        Dumper=_FlowListDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
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
    strict: bool = False,
    extra_column: str | None = None,
) -> Ontology:
    """Load a mapping file in any of :data:`FORMATS` (by extension unless ``fmt``); a name
    without extension is a built-in (YAML) mapping. For a CSV/TSV file without metadata
    the taxonomies default to those named by the reference's path convention
    (:func:`reference_taxonomies`). ``strict``: see :func:`ontology_from_csv`.

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
        raw = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{p}: file not found") from None
    except OSError as exc:
        raise UserError(f"{p}: cannot read: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is no cell
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: not UTF-8 text: {exc}") from None
    if extra_column is not None and fmt != "tsv":
        raise UserError(f"{path}: --column applies to TSV input only")
    pair = pairwise_columns(p, text) if fmt == "tsv" else None
    if pair is not None:
        return ontology_from_pairwise_tsv(
            text,
            source=source if source is not None else pair[1],
            extra=extra if extra is not None else pair[0],
            origin=str(p),
            base_dir=p.parent,
            strict=strict,
        )
    reader = ontology_from_csv if fmt == "csv" else ontology_from_tsv
    kwargs = {"extra_column": extra_column} if fmt == "tsv" else {}
    return reader(
        text,
        **kwargs,
        source=source,
        extra=extra,
        unlabelled=unlabelled,
        projection=projection,
        origin=str(p),
        base_dir=p.parent,
        inferred=reference_taxonomies(p),
        strict=strict,
    )


def ontology_to_text(
    onto: Ontology, fmt: str, *, metadata: bool = True, base_dir: Path | None = None
) -> str:
    """The mapping as text in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "yaml":
        return ontology_to_yaml(onto, base_dir=base_dir)
    if fmt == "csv":
        return ontology_to_csv(onto, metadata=metadata, base_dir=base_dir)
    if fmt == "tsv":
        return ontology_to_tsv(onto, metadata=metadata, base_dir=base_dir)
    raise UserError(f"unknown mapping format {fmt!r}; use one of {FORMATS}")


def write_ontology(
    onto: Ontology,
    path: str | Path,
    *,
    fmt: str | None = None,
    metadata: bool = True,
    labels_csv: bool = True,
) -> list[Path]:
    """Write a mapping file (format by extension unless ``fmt``).

    A CSV gets the reference's ``labels.csv`` (:func:`labels_csv_text`) beside it unless
    ``labels_csv`` is False; an existing ``labels.csv`` with other content is not
    overwritten (error naming it).

    Returns:
        The files written, the mapping first.

    Raises:
        UserError: the folder is not writable, or a different ``labels.csv`` is there.
    """
    p = Path(path)
    fmt = fmt or format_from_path(p)
    text = ontology_to_text(onto, fmt, metadata=metadata, base_dir=p.parent)
    written = [p]
    extra_files: list[tuple[Path, str]] = []
    if fmt == "csv" and labels_csv:
        companion = p.parent / "labels.csv"
        want = labels_csv_text(onto.extra)
        if companion.is_file() and companion.read_text(encoding="utf-8") != want:
            raise UserError(
                f"{companion}: exists with other content; the reference loader reads the "
                f"extra labels from it, so it is left alone: write elsewhere, remove it, or "
                f"pass --no-labels-csv"
            )
        extra_files.append((companion, want))
    write_text_atomic(p, text)  # OutputWriteError (a UserError) names the file
    for companion, want in extra_files:
        write_text_atomic(companion, want)
        written.append(companion)
    return written
