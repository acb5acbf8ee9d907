"""Mapping files in any of :data:`FORMATS`: the format by extension, reading, writing
(with the reference's ``labels.csv`` beside a CSV), and the notes of an import.

With the metadata, YAML -> CSV -> YAML and YAML -> TSV -> YAML give the same relation
(:meth:`~labelbridge.taxonomy.ontology.Ontology.same_as`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelbridge.errors import UserError
from labelbridge.files import write_text_atomic
from labelbridge.taxonomy.formats.mseg_tsv import (
    ontology_from_pairwise_tsv,
    ontology_from_tsv,
    ontology_to_tsv,
    pairwise_columns,
)
from labelbridge.taxonomy.formats.reference_csv import (
    labels_csv_text,
    ontology_from_csv,
    ontology_to_csv,
    reference_taxonomies,
)
from labelbridge.taxonomy.formats.yaml_form import ontology_to_yaml
from labelbridge.taxonomy.ontology import Ontology
from labelbridge.taxonomy.registry import load_taxonomy, mapping_path
from labelbridge.taxonomy.taxonomy import Taxonomy

#: Table formats understood by :func:`read_ontology` / :func:`write_ontology`.
FORMATS = ("yaml", "csv", "tsv")
_EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}


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
    verify: bool = False,
) -> list[Path]:
    """Write a mapping file (format by extension unless ``fmt``).

    A CSV gets the reference's ``labels.csv`` (:func:`labels_csv_text`) beside it unless
    ``labels_csv`` is False; an existing ``labels.csv`` with other content is not
    overwritten (error naming it). With ``verify`` the written file is read back
    (:func:`verify_written`).

    Returns:
        The files written, the mapping first.

    Raises:
        UserError: the folder is not writable, or a different ``labels.csv`` is there,
            or (``verify``) the file does not read back as the same mapping.
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
    if verify:
        verify_written(onto, p, fmt, metadata=metadata)
    return written


def carries_metadata(fmt: str, metadata: bool) -> bool:
    """Whether a file written in ``fmt`` names its taxonomies, policy and projection
    itself: YAML always, a CSV/TSV table when written with ``metadata``."""
    return fmt == "yaml" or metadata


def verify_written(onto: Ontology, path: str | Path, fmt: str, *, metadata: bool) -> None:
    """Read a file that :func:`write_ontology` wrote from ``onto`` back (``strict``, with
    the taxonomies, and for a table without metadata the policy and projection, given)
    and check that it defines the same mapping (:meth:`Ontology.same_as`).

    Raises:
        UserError: it does not read back, or not as the same mapping.
    """
    plain = not carries_metadata(fmt, metadata)
    back = read_ontology(
        path,
        fmt=fmt,
        source=onto.source,
        extra=onto.extra,
        unlabelled=onto.unlabelled if plain else None,
        projection=(onto.projection_overrides or {}) if plain else None,
        strict=True,
    )
    if not back.same_as(onto):
        raise UserError(f"{path}: the written {fmt} file does not read back as the same mapping")
