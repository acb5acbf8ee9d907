"""Derive a mapping for a coarser extra taxonomy from a finer one.

Given ``fine -> source`` (e.g. ``camvid32_to_mapillary_vistas_v1_2``) and a *bridge*
``fine -> coarse`` whose every row names one coarse class (``camvid32_to_camvid11``), a
pixel of coarse label ``c`` may be any source class that one of ``c``'s fine members may
be: its row is the union of the members' rows. It gets the void option when a member has
it, or when a member is written as ignore while others have classes (the coarse label
may hide that member). The projection of source classes several coarse labels allow is
chosen by :func:`~labelbridge.taxonomy.formats.projection_rule_choice`.
"""

from __future__ import annotations

from typing import Any

from labelbridge.errors import OntologyError
from labelbridge.taxonomy.ontology import IGNORE_ROW, Ontology


def derive_mapping(fine: Ontology, bridge: Ontology) -> Ontology:
    """The ``coarse -> source`` mapping implied by ``fine`` and ``bridge`` (see module doc).

    Raises:
        OntologyError: the bridge's extra taxonomy is not the fine mapping's, or a bridge
            row allows more than one coarse class.
    """
    from labelbridge.taxonomy.formats import rule_projection

    if bridge.extra.name != fine.extra.name:
        raise OntologyError(
            f"{bridge.origin}: bridges {bridge.extra.name!r}, but {fine.origin} maps "
            f"{fine.extra.name!r}"
        )
    coarse, source = bridge.source, fine.source
    members: dict[str, list[str]] = {name: [] for name in coarse.train_names}
    for cls in fine.extra.classes:
        parents = bridge.allowed_names(cls.name)
        if len(parents) > 1:
            raise OntologyError(
                f"{bridge.origin}: {cls.name!r} bridges to several classes {parents}; a bridge "
                "names one coarse class per fine label"
            )
        if parents:
            members[parents[0]].append(cls.name)
    rows: dict[str, Any] = {}
    for cname, fines in members.items():
        allowed: set[str] = set()
        void = False
        for f in fines:
            names = fine.allowed_names(f)
            allowed.update(names)
            void |= bool(fine.void_allowed[fine.extra.get(f).id]) or not names
        ordered = [n for n in source.train_names if n in allowed]
        rows[cname] = ordered + ([IGNORE_ROW] if void else []) if ordered else IGNORE_ROW
    projection = rule_projection(rows, source, coarse)
    data: dict[str, Any] = {
        "source": source.name,
        "extra": coarse.name,
        "unlabelled": "ignore",
        "mapping": rows,
        "notes": (
            f"Derived from {fine.origin.rsplit('/', 1)[-1]} through "
            f"{bridge.origin.rsplit('/', 1)[-1]} (labelbridge ontology derive): each "
            f"{coarse.name} label allows what its {fine.extra.name} members allow."
        ),
    }
    if projection:
        data["projection"] = projection
    return Ontology.from_dict(data, source=source, extra=coarse, origin="<derived>")
