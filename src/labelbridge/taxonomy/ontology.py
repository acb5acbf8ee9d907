"""Ontology mapping: for each label of an *extra* taxonomy, the set of *source* classes
a pixel with that label may truly be.

File format (YAML; full reference in ``docs/ontology-format.md``)::

    source: cityscapes          # taxonomy name, or path relative to this file
    extra: camvid11
    unlabelled: ignore          # extra pixels of ignored classes: ignore | unconstrained | constrained
    mapping:                    # every non-ignored extra class must appear
      Sky: [sky]
      Building: [building, wall]
      Car: [car, truck, bus]
      SomeLabel: ignore         # pixels of this label are written as ignore
      Void: [sky, building, ignore] # sky or building, or no source class at all
      Unlabelled: [sky, building]   # a row for an ignored class: used with 'constrained'
    projection:                 # source class -> extra class, for evaluation in the extra
      wall: Building            # taxonomy; needed only where it is not derivable

Derived once at load time:

* ``allowed``: ``(E, K)`` bool, ``E`` = size of the extra raw-id space (>= 256),
  ``K`` = source train classes; ``allowed[e, k]`` is True when a pixel with extra raw
  id ``e`` may be source class ``k``. An all-False row means "write ignore".
* ``projection``: ``(K,)`` int, source train id -> extra train id, or ``IGNORE_INDEX``
  when the source class has no counterpart in the extra taxonomy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import OntologyError, TaxonomyError
from labelbridge.taxonomy.classes import NameMatch, TaxonomyClass
from labelbridge.taxonomy.registry import load_taxonomy, mapping_path
from labelbridge.taxonomy.taxonomy import Taxonomy
from labelbridge.yamlio import LinedYaml, load_yaml

#: Policies for extra pixels whose class is ignored in the extra taxonomy.
UNLABELLED_POLICIES = ("ignore", "unconstrained", "constrained")
#: Row value meaning "pixels of this extra label are written as ignore"; inside a list of
#: classes it means "or something outside the source taxonomy" (the void option).
IGNORE_ROW = "ignore"


def taxonomy_reference(tax: Taxonomy, base_dir: Path | None = None) -> str:
    """How a mapping file names ``tax``: its built-in name, or the path of the file it
    came from (relative to ``base_dir`` when given and possible)."""
    if tax.origin is None:
        return tax.name
    if base_dir is not None:
        try:
            return Path(os.path.relpath(tax.origin, Path(base_dir).resolve())).as_posix()
        except ValueError:  # another drive
            pass
    return str(tax.origin)


@dataclass
class Ontology:
    """A validated mapping from an extra taxonomy into a source taxonomy.

    Args:
        source: the target label space (the teacher's taxonomy).
        extra: the extra dataset's taxonomy.
        rows: ``{extra class name: [source class names]}`` or ``IGNORE_ROW``.
        unlabelled: policy for extra pixels of ignored classes (see module doc).
        projection_overrides: ``{source class name: extra class name or IGNORE_ROW}``
            for evaluation, where not derivable from the rows.
        origin: file it was loaded from (for messages).
        notes: free text kept with the file (citations, departures).
        name_matches: ``"file:line: 'asked' -> 'class' (kind)"`` for every name that was
            not written exactly as the taxonomy spells it (alias, loose match, group).
        import_report: what an import from a table decided where the table leaves it
            open (skipped names, unlisted labels, projection choices); empty for YAML.
    """

    source: Taxonomy
    extra: Taxonomy
    rows: dict[str, list[str] | str]
    unlabelled: str = "ignore"
    projection_overrides: dict[str, str] | None = None
    origin: str = "<memory>"
    notes: str = ""
    name_matches: list[str] = field(default_factory=list)
    import_report: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ derived
    @cached_property
    def allowed(self) -> np.ndarray:
        """``(E, K)`` bool: may a pixel with extra raw id ``e`` be source train class ``k``."""
        num_rows = len(self.extra.lut)
        table = np.zeros((num_rows, self.source.num_classes), dtype=bool)
        for cls in self.extra.classes:
            row = self.rows.get(cls.name)
            if cls.ignore:
                if self.unlabelled == "unconstrained":
                    table[cls.id] = True
                    continue
                if self.unlabelled == "ignore":
                    continue
            if row is None or row == IGNORE_ROW:
                continue
            for name in row:
                if name != IGNORE_ROW:
                    table[cls.id, self.source.train_id_of(name)] = True
        if self.unlabelled == "unconstrained":
            # ids the extra files may carry as "no label" without a class entry
            known = {c.id for c in self.extra.classes}
            if IGNORE_INDEX not in known and IGNORE_INDEX < num_rows:
                table[IGNORE_INDEX] = True
        return table

    @cached_property
    def void_allowed(self) -> np.ndarray:
        """``(E,)`` bool: rows listing ``ignore`` beside source classes (the void option)."""
        out = np.zeros(len(self.extra.lut), dtype=bool)
        for cls in self.extra.classes:
            if cls.ignore and self.unlabelled != "constrained":
                continue
            row = self.rows.get(cls.name)
            if isinstance(row, list) and IGNORE_ROW in row:
                out[cls.id] = True
        return out

    @property
    def has_void_option(self) -> bool:
        """Whether any row has the void option (see :attr:`void_allowed`)."""
        return bool(self.void_allowed.any())

    @cached_property
    def projection(self) -> np.ndarray:
        """``(K,)`` int64: source train id -> extra train id (``IGNORE_INDEX`` = none)."""
        out = np.full(self.source.num_classes, IGNORE_INDEX, dtype=np.int64)
        owners = self._owners()
        overrides = self.projection_overrides or {}
        for k, name in enumerate(self.source.train_names):
            if name in overrides:
                target = overrides[name]
                out[k] = IGNORE_INDEX if target == IGNORE_ROW else self.extra.train_id_of(target)
            elif len(owners[k]) == 1:
                out[k] = self.extra.train_id_of(owners[k][0])
        return out

    def _owners(self) -> list[list[str]]:
        """For each source train class, the non-ignored extra classes whose rows hold it."""
        owners: list[list[str]] = [[] for _ in range(self.source.num_classes)]
        for cls in self.extra.train_classes:
            row = self.rows.get(cls.name)
            if isinstance(row, list):
                for name in row:
                    if name != IGNORE_ROW:
                        owners[self.source.train_id_of(name)].append(cls.name)
        return owners

    def allowed_names(self, extra_name: str) -> list[str]:
        """Source class names allowed for pixels of extra class ``extra_name``."""
        row = self.allowed[self.extra.get(extra_name).id]
        return [self.source.train_names[k] for k in np.flatnonzero(row)]

    def projection_names(self) -> dict[str, str]:
        """:attr:`projection` by name: ``{source class: extra label}`` for every source
        train class, :data:`IGNORE_ROW` where it has no counterpart in the extra taxonomy."""
        return {
            name: (self.extra.train_names[int(e)] if int(e) != IGNORE_INDEX else IGNORE_ROW)
            for name, e in zip(self.source.train_names, self.projection, strict=True)
        }

    def name_match_counts(self) -> dict[str, int]:
        """How many names were resolved each way other than exactly, ``{kind: count}``
        (kinds of :data:`~labelbridge.taxonomy.classes.MATCH_KINDS`, in the order first
        met in :attr:`name_matches`)."""
        counts: dict[str, int] = {}
        for match in self.name_matches:
            kind = match.rsplit("(", 1)[-1].rstrip(")")
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self, *, base_dir: Path | None = None) -> dict[str, Any]:
        """Plain data of the YAML form. Taxonomies that are not built in are named by the
        path of their file (relative to ``base_dir``, the folder the mapping is written
        to, when given), so the written file loads again."""
        out: dict[str, Any] = {
            "source": taxonomy_reference(self.source, base_dir),
            "extra": taxonomy_reference(self.extra, base_dir),
            "unlabelled": self.unlabelled,
            "mapping": {k: (v if isinstance(v, str) else list(v)) for k, v in self.rows.items()},
        }
        if self.projection_overrides:
            out["projection"] = dict(self.projection_overrides)
        if self.notes:
            out["notes"] = self.notes
        return out

    def same_as(self, other: Ontology) -> bool:
        """Whether two mappings define the same relation (allowed matrix, void option and
        projection)."""
        return (
            self.source.name == other.source.name
            and self.extra.name == other.extra.name
            and np.array_equal(self.allowed, other.allowed)
            and np.array_equal(self.void_allowed, other.void_allowed)
            and np.array_equal(self.projection, other.projection)
        )

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        where: LinedYaml | None = None,
        origin: str = "<dict>",
        base_dir: Path | None = None,
        source: Taxonomy | None = None,
        extra: Taxonomy | None = None,
    ) -> Ontology:
        """Build and validate a mapping from plain data.

        Raises:
            OntologyError: naming the file, line and the offending name, for unknown
                names on either side, uncovered extra labels, empty sets, bad policies,
                wrong types, or ambiguous projections.
        """
        at = where.where if where is not None else (lambda *k: origin)
        if not isinstance(data, dict):
            raise OntologyError(
                f"{origin}: a mapping file must be a YAML mapping with source, extra, mapping"
            )
        known = {"source", "extra", "unlabelled", "mapping", "projection", "notes"}
        for key in data:
            if key not in known:
                raise OntologyError(f"{at(key)}: unknown key {key!r} (expected {sorted(known)})")
        for key in ("source", "extra", "mapping"):
            if key not in data:
                raise OntologyError(f"{origin}: missing required key {key!r}")
        try:
            src = source or load_taxonomy(str(data["source"]), base_dir=base_dir)
            ext = extra or load_taxonomy(str(data["extra"]), base_dir=base_dir)
        except TaxonomyError as exc:
            raise OntologyError(f"{at('source')}: {exc}") from None
        policy = data.get("unlabelled", "ignore")
        if policy not in UNLABELLED_POLICIES:
            raise OntologyError(
                f"{at('unlabelled')}: unlabelled must be one of {UNLABELLED_POLICIES}, got {policy!r}"
            )
        mapping = data["mapping"]
        if mapping is None:  # an empty 'mapping:' section: report the uncovered labels below
            mapping = {}
        if not isinstance(mapping, dict):
            raise OntologyError(
                f"{at('mapping')}: 'mapping' must map extra labels to lists of source classes"
            )
        rows: dict[str, list[str] | str] = {}
        row_origin: dict[str, str] = {}
        matches: list[str] = []

        def note(loc: str, match: NameMatch) -> None:
            if match.kind != "exact":
                target = ", ".join(c.name for c in match.classes)
                matches.append(f"{loc}: {match.name!r} -> {target!r} ({match.kind})")

        for extra_name, value in mapping.items():
            loc = at("mapping", extra_name)
            try:
                ematch = ext.lookup(str(extra_name))
            except TaxonomyError as exc:
                raise OntologyError(f"{loc}: unknown extra label: {exc}") from None
            note(loc, ematch)
            shown = ematch.canonical
            if value == IGNORE_ROW:
                row: list[str] | str = IGNORE_ROW
            else:
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list):
                    raise OntologyError(
                        f"{loc}: the row of {shown!r} must be a list of source classes or 'ignore', got {value!r}"
                    )
                if not value:
                    raise OntologyError(
                        f"{loc}: empty set for extra label {shown!r}; write 'ignore' to map it to ignore"
                    )
                names: list[str] = []
                void_option = False
                for j, item in enumerate(value):
                    iloc = at("mapping", extra_name, j)
                    if not isinstance(item, str):
                        raise OntologyError(
                            f"{iloc}: source class names must be strings, got {item!r}"
                        )
                    if item == IGNORE_ROW:
                        if void_option:
                            raise OntologyError(f"{iloc}: 'ignore' listed twice for {shown!r}")
                        void_option = True
                        continue
                    try:
                        smatch = src.lookup(item)
                    except TaxonomyError as exc:
                        raise OntologyError(
                            f"{iloc}: unknown source class in row {shown!r}: {exc}"
                        ) from None
                    note(iloc, smatch)
                    for scls in smatch.classes:
                        if scls.ignore:
                            raise OntologyError(
                                f"{iloc}: source class {scls.name!r} is ignored in {src.name!r}; "
                                f"use 'ignore' for the whole row instead"
                            )
                        if scls.name in names:
                            raise OntologyError(
                                f"{iloc}: source class {scls.name!r} listed twice for {shown!r}"
                            )
                        names.append(scls.name)
                # a list of only 'ignore' means the same as the row 'ignore'
                row = names + [IGNORE_ROW] if names and void_option else (names or IGNORE_ROW)
            for ecls in ematch.classes:
                if ecls.name in rows:
                    raise OntologyError(
                        f"{loc}: extra label {ecls.name!r} is mapped twice "
                        f"(also by {row_origin[ecls.name]!r})"
                    )
                if ecls.ignore and isinstance(row, list) and policy != "constrained":
                    raise OntologyError(
                        f"{loc}: a row for the ignored extra class {ecls.name!r} has no effect "
                        f"under 'unlabelled: {policy}'; use 'unlabelled: constrained' or remove it"
                    )
                rows[ecls.name] = row if isinstance(row, str) else list(row)
                row_origin[ecls.name] = str(extra_name)
        missing = [c.name for c in ext.train_classes if c.name not in rows]
        if missing:
            raise OntologyError(
                f"{at('mapping')}: extra labels not covered by the mapping: {missing}"
            )
        if policy == "constrained":
            missing_ign = [c.name for c in ext.classes if c.ignore and c.name not in rows]
            if missing_ign:
                raise OntologyError(
                    f"{at('unlabelled')}: 'unlabelled: constrained' needs a row for each ignored "
                    f"extra class; missing: {missing_ign}"
                )
        overrides_raw = data.get("projection") or {}
        if not isinstance(overrides_raw, dict):
            raise OntologyError(
                f"{at('projection')}: 'projection' must map source classes to extra labels"
            )

        def projected(tax: Taxonomy, name: Any, loc: str, what: str) -> TaxonomyClass:
            """The one class of ``tax`` a projection entry names (``what`` for messages)."""
            try:
                match = tax.lookup(str(name))
                found = tax.get(str(name))
            except TaxonomyError as exc:
                raise OntologyError(f"{loc}: unknown {what} in projection: {exc}") from None
            note(loc, match)
            return found

        overrides: dict[str, str] = {}
        for sname, ename in overrides_raw.items():
            loc = at("projection", sname)
            scls = projected(src, sname, loc, "source class")
            if ename == IGNORE_ROW:
                overrides[scls.name] = IGNORE_ROW
                continue
            ecls = projected(ext, ename, loc, "extra label")
            if ecls.ignore:
                raise OntologyError(f"{loc}: projection target {ecls.name!r} is an ignored class")
            overrides[scls.name] = ecls.name
        notes = data.get("notes", "")
        if not isinstance(notes, str):
            raise OntologyError(f"{at('notes')}: 'notes' must be text")
        onto = cls(src, ext, rows, policy, overrides or None, origin, notes, matches)
        owners = onto._owners()
        ambiguous = [
            (src.train_names[k], o)
            for k, o in enumerate(owners)
            if len(o) > 1 and src.train_names[k] not in overrides
        ]
        if ambiguous:
            name, owner_list = ambiguous[0]
            raise OntologyError(
                f"{at('mapping')}: source class {name!r} is allowed for several extra labels "
                f"{owner_list}, so its projection for evaluation is not derivable; add "
                f"'projection: {{{name}: <one of them>}}'"
                + (f" (and for {len(ambiguous) - 1} more)" if len(ambiguous) > 1 else "")
            )
        _ = onto.allowed, onto.projection  # build the derived tables once, now
        return onto

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Ontology:
        """Load a mapping by built-in name or path; see :meth:`from_dict`."""
        p = mapping_path(path)
        doc = load_yaml(p)
        return cls.from_dict(doc.data, where=doc, origin=str(p), base_dir=p.parent, **kwargs)


def load_ontology(name_or_path: str | Path) -> Ontology:
    """Shorthand for :meth:`Ontology.from_file`."""
    return Ontology.from_file(name_or_path)
