"""Rows of a mapping table and the :class:`~labelbridge.taxonomy.ontology.Ontology` they
mean, both ways, shared by the reference CSV and the MSeg-style TSV.

Both tables have **one row per source train class** listing the extra labels whose pixels
may be that class, plus one *void* row listing the extra labels written as ignore
(``docs/ontology-format.md``). Writing, :func:`extra_lists` spells every policy out as
such lists; reading, :class:`TableBuilder` collects the rows and decides, and reports,
what a table leaves open: the policy, labels in no row, and the projection of a source
class that several extra labels allow (:func:`projection_rule_choice`).
"""

from __future__ import annotations

import logging
from typing import Any

from labelbridge.errors import OntologyError, TaxonomyError
from labelbridge.taxonomy.formats.metadata import TableSettings
from labelbridge.taxonomy.ontology import IGNORE_ROW, UNLABELLED_POLICIES, Ontology
from labelbridge.taxonomy.taxonomy import Taxonomy, normalize_name
from labelbridge.yamlio import LinedYaml

logger = logging.getLogger(__name__)


def extra_lists(onto: Ontology) -> tuple[dict[str, list[str]], list[str]]:
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


class TableBuilder:
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

    def finish(self, header_line: int, settings: TableSettings) -> Ontology:
        """The mapping of the rows added, with ``settings`` from the metadata and
        arguments; ``header_line`` is named where the file has no line of its own for
        something (a missing source row, an inferred policy).

        Raises:
            OntologyError: source classes without a row, a bad policy, a table that
                contradicts ``unconstrained``, or an invalid mapping.
        """
        policy, policy_line = settings.policy, settings.policy_line
        projection, projection_line = settings.projection, settings.projection_line
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
        self.lines[("source",)] = settings.source_line or header_line
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
