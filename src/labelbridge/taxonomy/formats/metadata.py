"""The ``# key: value`` metadata of a mapping table, and how it combines with the caller's
arguments.

What neither table (reference CSV, MSeg-style TSV) can carry - the taxonomy names, the
``unlabelled`` policy and projection overrides - is written as ``# key: value`` comment
lines above the table (the reference CSV also takes them as ``key: value`` cells of its
header row, see :mod:`~labelbridge.taxonomy.formats.reference_csv`) or given as arguments
when reading; where both say something they must agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelbridge.errors import OntologyError, TaxonomyError, UserError
from labelbridge.taxonomy.ontology import Ontology, taxonomy_reference
from labelbridge.taxonomy.registry import builtin_taxonomy_name, load_taxonomy
from labelbridge.taxonomy.taxonomy import Taxonomy

#: Keys of the ``# key: value`` metadata comment lines.
METADATA_KEYS = ("format", "source", "extra", "unlabelled", "projection")
#: Value of the ``format`` key (and the CSV header cell) this version writes and reads.
FORMAT_TAG = "labelbridge-ontology-1"
_META_RE = re.compile(r"^#\s*([A-Za-z_]+)\s*:(.*)$")

#: Metadata read from a file: ``{key: (value, line)}``.
Metadata = dict[str, tuple[str, int]]


@dataclass(frozen=True)
class TableSettings:
    """What the metadata and the arguments settle beside a table's rows, with the line
    each came from (``None``: not in the file; messages then name the header line).

    Attributes:
        policy: the ``unlabelled`` policy, ``None`` to infer it from the rows.
        policy_line: line of the ``unlabelled`` metadata.
        projection: projection overrides ``{source class: extra label}``, ``None`` to
            choose them by :func:`~labelbridge.taxonomy.formats.table.projection_rule_choice`.
        projection_line: line of the ``projection`` metadata.
        source_line: line of the ``source`` metadata.
    """

    policy: str | None = None
    policy_line: int | None = None
    projection: dict[str, str] | None = None
    projection_line: int | None = None
    source_line: int | None = None


def metadata_entries(onto: Ontology, base_dir: Path | None = None) -> list[tuple[str, str]]:
    """``(key, value)`` of the metadata written for ``onto`` after the ``format`` tag:
    source, extra (named as in :func:`taxonomy_reference`), unlabelled, and projection
    (JSON) when it has overrides."""
    entries = [
        ("source", taxonomy_reference(onto.source, base_dir)),
        ("extra", taxonomy_reference(onto.extra, base_dir)),
        ("unlabelled", onto.unlabelled),
    ]
    if onto.projection_overrides:
        entries.append(("projection", json.dumps(onto.projection_overrides, ensure_ascii=False)))
    return entries


def metadata_lines(onto: Ontology, layout: str, base_dir: Path | None = None) -> list[str]:
    """The ``# key: value`` comment lines written above a table in ``layout``."""
    lines = [f"# labelbridge ontology mapping, {layout}", f"# format: {FORMAT_TAG}"]
    return lines + [f"# {key}: {value}" for key, value in metadata_entries(onto, base_dir)]


def put_meta(meta: Metadata, key: str, value: str, line: int, origin: str, what: str) -> None:
    """Add one metadata entry, refusing unknown and repeated keys."""
    if key not in METADATA_KEYS:
        raise OntologyError(f"{origin}:{line}: {what} (expected keys {METADATA_KEYS})")
    if key in meta:
        raise OntologyError(
            f"{origin}:{line}: metadata key {key!r} given twice (first on line {meta[key][1]})"
        )
    meta[key] = (value, line)


def split_metadata(text: str, origin: str) -> tuple[Metadata, list[str], int]:
    """Leading ``#`` lines -> ``{key: (value, line)}``, the remaining lines, first line no."""
    lines = text.splitlines()
    meta: Metadata = {}
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        m = _META_RE.match(lines[i])
        if m:
            key, value = m.group(1), m.group(2).strip()
            put_meta(meta, key, value, i + 1, origin, f"unknown metadata key {key!r}")
        i += 1
    if "format" in meta and meta["format"][0] != FORMAT_TAG:
        value, line = meta["format"]
        raise OntologyError(
            f"{origin}:{line}: unsupported format {value!r} (this version reads {FORMAT_TAG!r})"
        )
    return meta, lines[i:], i + 1


def same_taxonomy(value: str, tax: Taxonomy, base_dir: Path | None) -> bool:
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


def resolve_taxonomy(
    role: str,
    given: Taxonomy | str | None,
    meta: Metadata,
    origin: str,
    base_dir: Path | None,
    fallback: str | None = None,
) -> tuple[Taxonomy, int | None]:
    """The source/extra taxonomy from the argument and/or the metadata (which must agree),
    else ``fallback`` (inferred from the reference's path convention)."""
    line = meta[role][1] if role in meta else None
    where = f"{origin}:{line}" if line else origin
    if isinstance(given, Taxonomy):
        if role in meta and not same_taxonomy(meta[role][0], given, base_dir):
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
    if given is not None and role in meta and not same_taxonomy(meta[role][0], tax, base_dir):
        raise OntologyError(
            f"{where}: the file says {role} {meta[role][0]!r} but {given!r} was given"
        )
    return tax, line


def resolve_sides(
    source: Taxonomy | str | None,
    extra: Taxonomy | str | None,
    meta: Metadata,
    origin: str,
    base_dir: Path | None,
    inferred: tuple[str | None, str | None] = (None, None),
) -> tuple[Taxonomy, Taxonomy, int | None]:
    """Both taxonomies of a table by :func:`resolve_taxonomy` (``inferred``: the fallback
    names from the file's path), and the line of the ``source`` metadata."""
    src, source_line = resolve_taxonomy("source", source, meta, origin, base_dir, inferred[0])
    ext, _ = resolve_taxonomy("extra", extra, meta, origin, base_dir, inferred[1])
    return src, ext, source_line


def resolve_settings(
    unlabelled: str | None,
    projection: dict[str, str] | None,
    meta: Metadata,
    origin: str,
    source_line: int | None,
) -> TableSettings:
    """The policy (:func:`resolve_policy`) and projection (:func:`resolve_projection`) of
    a table, with the lines they came from."""
    policy, policy_line = resolve_policy(unlabelled, meta, origin)
    proj, proj_line = resolve_projection(projection, meta, origin)
    return TableSettings(policy, policy_line, proj, proj_line, source_line)


def resolve_policy(given: str | None, meta: Metadata, origin: str) -> tuple[str | None, int | None]:
    """The ``unlabelled`` policy from the metadata and/or the argument (which must agree),
    and the line of the metadata; ``(None, None)`` when neither says it."""
    if "unlabelled" in meta:
        value, line = meta["unlabelled"]
        if given is not None and given != value:
            raise OntologyError(
                f"{origin}:{line}: the file says unlabelled {value!r} but {given!r} was given"
            )
        return value, line
    return given, None


def resolve_projection(
    given: dict[str, str] | None, meta: Metadata, origin: str
) -> tuple[dict[str, str] | None, int | None]:
    """The projection overrides from the metadata (a JSON object) and/or the argument
    (which must agree), and the line of the metadata; ``None`` when neither gives them."""
    if "projection" not in meta:
        return (dict(given) if given is not None else None), None
    value, line = meta["projection"]
    parsed = projection_json(value, f"{origin}:{line}: projection must be a JSON object")
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise OntologyError(
            f"{origin}:{line}: projection must map source class names to extra label names"
        )
    if given is not None and dict(given) != parsed:
        raise OntologyError(f"{origin}:{line}: the file's projection differs from the one given")
    return parsed, line


def projection_json(text: str, problem: str, error: type[UserError] = OntologyError) -> Any:
    """Projection overrides written as JSON text (the ``projection`` metadata, the CLI's
    ``--projection``), parsed but not yet checked.

    Raises:
        UserError: ``error`` with the message ``"<problem>: <what is wrong with the JSON>"``.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{problem}: {exc}") from None
