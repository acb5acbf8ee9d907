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

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import OntologyError, TaxonomyError
from labelbridge.taxonomy.registry import load_taxonomy, mapping_path
from labelbridge.taxonomy.taxonomy import Taxonomy
from labelbridge.yamlio import LinedYaml, load_yaml

#: Policies for extra pixels whose class is ignored in the extra taxonomy.
UNLABELLED_POLICIES = ("ignore", "unconstrained", "constrained")
#: Row value meaning "pixels of this extra label are written as ignore".
IGNORE_ROW = "ignore"


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
    """

    source: Taxonomy
    extra: Taxonomy
    rows: dict[str, list[str] | str]
    unlabelled: str = "ignore"
    projection_overrides: dict[str, str] | None = None
    origin: str = "<memory>"

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
                table[cls.id, self.source.train_id_of(name)] = True
        if self.unlabelled == "unconstrained":
            # ids the extra files may carry as "no label" without a class entry
            known = {c.id for c in self.extra.classes}
            if IGNORE_INDEX not in known and IGNORE_INDEX < num_rows:
                table[IGNORE_INDEX] = True
        return table

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
                    owners[self.source.train_id_of(name)].append(cls.name)
        return owners

    def allowed_names(self, extra_name: str) -> list[str]:
        """Source class names allowed for pixels of extra class ``extra_name``."""
        row = self.allowed[self.extra.get(extra_name).id]
        return [self.source.train_names[k] for k in np.flatnonzero(row)]

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source.name,
            "extra": self.extra.name,
            "unlabelled": self.unlabelled,
            "mapping": {k: (v if isinstance(v, str) else list(v)) for k, v in self.rows.items()},
        }
        if self.projection_overrides:
            out["projection"] = dict(self.projection_overrides)
        return out

    def same_as(self, other: Ontology) -> bool:
        """Whether two mappings define the same relation (allowed matrix and projection)."""
        return (
            self.source.name == other.source.name
            and self.extra.name == other.extra.name
            and np.array_equal(self.allowed, other.allowed)
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
        for extra_name, value in mapping.items():
            loc = at("mapping", extra_name)
            try:
                ecls = ext.get(str(extra_name))
            except TaxonomyError as exc:
                raise OntologyError(f"{loc}: unknown extra label: {exc}") from None
            if ecls.name in rows:
                raise OntologyError(f"{loc}: extra label {ecls.name!r} is mapped twice")
            if value == IGNORE_ROW:
                rows[ecls.name] = IGNORE_ROW
                continue
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                raise OntologyError(
                    f"{loc}: the row of {ecls.name!r} must be a list of source classes or 'ignore', got {value!r}"
                )
            if not value:
                raise OntologyError(
                    f"{loc}: empty set for extra label {ecls.name!r}; write 'ignore' to map it to ignore"
                )
            names: list[str] = []
            for j, item in enumerate(value):
                iloc = at("mapping", extra_name, j)
                if not isinstance(item, str):
                    raise OntologyError(f"{iloc}: source class names must be strings, got {item!r}")
                try:
                    scls = src.get(item)
                except TaxonomyError as exc:
                    raise OntologyError(
                        f"{iloc}: unknown source class in row {ecls.name!r}: {exc}"
                    ) from None
                if scls.ignore:
                    raise OntologyError(
                        f"{iloc}: source class {scls.name!r} is ignored in {src.name!r}; "
                        f"use 'ignore' for the whole row instead"
                    )
                if scls.name in names:
                    raise OntologyError(
                        f"{iloc}: source class {scls.name!r} listed twice for {ecls.name!r}"
                    )
                names.append(scls.name)
            rows[ecls.name] = names
            if ecls.ignore and policy != "constrained":
                raise OntologyError(
                    f"{loc}: a row for the ignored extra class {ecls.name!r} has no effect "
                    f"under 'unlabelled: {policy}'; use 'unlabelled: constrained' or remove it"
                )
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
        overrides: dict[str, str] = {}
        for sname, ename in overrides_raw.items():
            loc = at("projection", sname)
            try:
                scls = src.get(str(sname))
            except TaxonomyError as exc:
                raise OntologyError(f"{loc}: unknown source class in projection: {exc}") from None
            if ename == IGNORE_ROW:
                overrides[scls.name] = IGNORE_ROW
                continue
            try:
                ecls = ext.get(str(ename))
            except TaxonomyError as exc:
                raise OntologyError(f"{loc}: unknown extra label in projection: {exc}") from None
            if ecls.ignore:
                raise OntologyError(f"{loc}: projection target {ecls.name!r} is an ignored class")
            overrides[scls.name] = ecls.name
        onto = cls(src, ext, rows, policy, overrides or None, origin)
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
