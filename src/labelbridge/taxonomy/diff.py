"""Differences between two ontology mappings (``labelbridge ontology diff``).

Two mappings are compared by what they mean, not how they are written: per extra label
the source classes its pixels may be (rows of the ``allowed`` matrices, so a change of
the ``unlabelled`` policy shows in the rows of the ignored extra classes), the void
option, the policy, and the projection for evaluation. Mappings of two different extra
taxonomies (CamVid-32 and CamVid-11) are compared label by label through a built-in
mapping between those taxonomies whose every row names one class
(``camvid32_to_camvid11``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from labelbridge.taxonomy.ontology import Ontology, load_ontology
from labelbridge.taxonomy.registry import list_mappings

V = TypeVar("V")


@dataclass(frozen=True)
class Change(Generic[V]):
    """A value in mapping A and in mapping B."""

    a: V
    b: V

    def to_dict(self) -> dict[str, V]:
        return {"a": self.a, "b": self.b}


@dataclass(frozen=True)
class LabelChange:
    """How the source classes allowed for one extra label differ.

    Attributes:
        added: source classes allowed in B but not in A, in B's order.
        removed: source classes allowed in A but not in B, in A's order.
    """

    added: list[str]
    removed: list[str]

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "removed": list(self.removed)}


@dataclass(frozen=True)
class OntologyDiff:
    """The result of :func:`diff_ontologies`; only what differs is listed.

    Attributes:
        a, b: where the two mappings came from (``Ontology.origin``).
        source, extra: the taxonomy names of both sides.
        via: the built-in mapping through which the extra labels were paired, ``None``
            when both have the same extra taxonomy (or no such mapping exists).
        labels: ``{extra label: change}``; a label paired across two extra taxonomies
            is shown as ``"<label of A> / <label of B>"``.
        void: ``{extra label: whether the row has the void option}``.
        unlabelled: the two policies, ``None`` when they agree.
        projection: ``{source class: extra label (or "ignore") it projects onto}``;
            compared only when both have the same extra taxonomy.
        identical: the two define the same mapping
            (:meth:`~labelbridge.taxonomy.ontology.Ontology.same_as`, same taxonomies).
    """

    a: str
    b: str
    source: Change[str]
    extra: Change[str]
    via: str | None
    labels: dict[str, LabelChange]
    void: dict[str, Change[bool]]
    unlabelled: Change[str] | None
    projection: dict[str, Change[str]]
    identical: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the ``--json`` output): ``{"a", "b", "taxonomies": {"source":
        {"a", "b"}, "extra": {"a", "b"}}, "via", "labels": {label: {"added",
        "removed"}}, "void": {label: {"a", "b"}}, "unlabelled": {"a", "b"} | None,
        "projection": {source class: {"a", "b"}}, "identical"}``."""
        return {
            "a": self.a,
            "b": self.b,
            "taxonomies": {"source": self.source.to_dict(), "extra": self.extra.to_dict()},
            "via": self.via,
            "labels": {k: v.to_dict() for k, v in self.labels.items()},
            "void": {k: v.to_dict() for k, v in self.void.items()},
            "unlabelled": self.unlabelled.to_dict() if self.unlabelled else None,
            "projection": {k: v.to_dict() for k, v in self.projection.items()},
            "identical": self.identical,
        }


def aligned_labels(a: Ontology, b: Ontology) -> tuple[dict[str, str], str | None]:
    """Labels of A's extra taxonomy paired with B's: the same names when the extra
    taxonomies agree, else through a built-in mapping between the two extra taxonomies
    whose every row names one class (e.g. ``camvid32_to_camvid11``).

    Returns:
        ``({label of A: label of B}, name of the built-in mapping or None)``; across
        extra taxonomies only the fine labels whose row names exactly one coarse label
        are paired, and ``({}, None)`` when no such mapping is built in.
    """
    if a.extra.name == b.extra.name:
        return {c.name: c.name for c in a.extra.classes}, None
    for fine, coarse, flip in ((a.extra, b.extra, False), (b.extra, a.extra, True)):
        name = f"{fine.name}_to_{coarse.name}"
        if name not in list_mappings():
            continue
        bridge = load_ontology(name)
        pairs: dict[str, str] = {}
        for cls in fine.classes:
            allowed = bridge.allowed_names(cls.name)
            if len(allowed) == 1:
                pairs[cls.name] = allowed[0]
        if flip:  # A is the coarse side: compare each fine label of B with its parent
            return {v: k for k, v in pairs.items()}, name
        return pairs, name
    return {}, None


def _void_option(onto: Ontology, label: str) -> bool:
    """Whether the row of ``label`` has the void option (``False`` for no such label)."""
    return bool(onto.void_allowed[onto.extra.get(label).id]) if label in onto.extra else False


def diff_ontologies(a: Ontology, b: Ontology) -> OntologyDiff:
    """Differences between two mappings, by class name.

    Extra labels are compared by name, or, across two extra taxonomies (CamVid-32 and
    CamVid-11), through a built-in one-class-per-row mapping between them
    (:func:`aligned_labels`). Source classes are compared through the allowed matrices,
    so policies are taken into account.
    """
    pairs, via = aligned_labels(a, b)
    if via is not None and a.extra.name != b.extra.name:
        keys = list(pairs.items())
    else:
        keys = [(c.name, c.name) for c in a.extra.classes] + [
            (c.name, c.name) for c in b.extra.classes if c.name not in a.extra
        ]
    labels: dict[str, LabelChange] = {}
    void: dict[str, Change[bool]] = {}
    for name_a, name_b in keys:
        in_a = a.allowed_names(name_a) if name_a in a.extra else []
        in_b = b.allowed_names(name_b) if name_b in b.extra else []
        shown = name_a if name_a == name_b else f"{name_a} / {name_b}"
        added = [n for n in in_b if n not in in_a]
        removed = [n for n in in_a if n not in in_b]
        if added or removed:
            labels[shown] = LabelChange(added, removed)
        va, vb = _void_option(a, name_a), _void_option(b, name_b)
        if va != vb:
            void[shown] = Change(va, vb)
    same_extra = a.extra.name == b.extra.name
    projection: dict[str, Change[str]] = {}
    if same_extra:
        pa, pb = a.projection_names(), b.projection_names()
        for s in list(pa) + [s for s in pb if s not in pa]:
            if pa.get(s) != pb.get(s):
                projection[s] = Change(pa.get(s, "-"), pb.get(s, "-"))
    unlabelled = None if a.unlabelled == b.unlabelled else Change(a.unlabelled, b.unlabelled)
    same_tax = a.source.name == b.source.name and same_extra
    return OntologyDiff(
        a=a.origin,
        b=b.origin,
        source=Change(a.source.name, b.source.name),
        extra=Change(a.extra.name, b.extra.name),
        via=via,
        labels=labels,
        void=void,
        unlabelled=unlabelled,
        projection=projection,
        identical=same_tax and not labels and not void and not projection and a.same_as(b),
    )
