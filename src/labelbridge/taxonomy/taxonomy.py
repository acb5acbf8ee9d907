"""Taxonomy: the classes of one dataset (ids as stored in its label files, names,
colours, which are ignored) and the derived train-id space.

Two id spaces matter:

* **raw ids**: the values stored in a dataset's label files (e.g. Cityscapes label ids
  0..33, CamVid 0..11). Readers yield label maps in raw ids.
* **train ids**: ``0 .. num_classes-1`` for the classes a model predicts, and
  :data:`~labelbridge.constants.IGNORE_INDEX` for ignored pixels. Models, pseudo-labels,
  losses and metrics use train ids.

Derived tables (lookup from raw to train ids, palettes) are computed once from the data.

The parts of a taxonomy (:class:`TaxonomyClass`, name matching) are in
:mod:`labelbridge.taxonomy.classes`, the file reader and validator behind
:meth:`Taxonomy.from_dict` / :meth:`Taxonomy.from_file` in
:mod:`labelbridge.taxonomy.taxonomy_file`; both are importable from here too.
"""

from __future__ import annotations

import difflib
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import TaxonomyError
from labelbridge.taxonomy.classes import (
    LABEL_FORMATS,
    MATCH_KINDS,
    NameMatch,
    TaxonomyClass,
    normalize_name,
)
from labelbridge.taxonomy.taxonomy_file import taxonomy_from_dict, taxonomy_from_file

__all__ = [
    "LABEL_FORMATS",
    "MATCH_KINDS",
    "UNKNOWN_ID",
    "NameMatch",
    "Taxonomy",
    "TaxonomyClass",
    "normalize_name",
]

#: Sentinel in the raw->train lookup table for raw ids that are not in the taxonomy.
UNKNOWN_ID: int = -1


class Taxonomy:
    """A dataset's classes and the derived train-id space.

    Args:
        name: short identifier, e.g. ``"cityscapes"``.
        classes: the classes, in file order.
        title: human-readable title.
        label_format: ``"id"`` (label PNGs store raw ids) or ``"color"`` (RGB colours).
        source: where the class list comes from (citation).
        notes: free text, including what could not be confirmed.
        aliases: other names of the taxonomy itself (e.g. the reference's folder name
            ``"IDD"``), accepted by :func:`~labelbridge.taxonomy.registry.load_taxonomy`.
        groups: ``{group name: [class names]}``, names a mapping may use for several
            classes at once (e.g. a release that splits ``car`` into ``Car 1..4``).
        origin: the file it was loaded from when not built in (``None`` for built-ins
            and taxonomies made in memory); mappings written to disk refer to it.
    """

    def __init__(
        self,
        name: str,
        classes: list[TaxonomyClass],
        *,
        title: str = "",
        label_format: str = "id",
        source: str = "",
        notes: str = "",
        aliases: tuple[str, ...] | list[str] = (),
        groups: dict[str, list[str]] | None = None,
        origin: Path | None = None,
    ) -> None:
        if label_format not in LABEL_FORMATS:
            raise TaxonomyError(f"taxonomy {name!r}: label_format must be one of {LABEL_FORMATS}")
        self.name = name
        self.classes = list(classes)
        self.title = title or name
        self.label_format = label_format
        self.source = source
        self.notes = notes
        self.aliases = tuple(aliases)
        self.groups = {k: list(v) for k, v in (groups or {}).items()}
        self.origin = origin
        self._by_name = {c.name: c for c in self.classes}
        self._by_id = {c.id: c for c in self.classes}
        self._by_alias: dict[str, TaxonomyClass] = {}
        for c in self.classes:
            for a in c.aliases:
                if a in self._by_name or a in self._by_alias or a in self.groups:
                    raise TaxonomyError(
                        f"taxonomy {name!r}: alias {a!r} of {c.name!r} is already a class name, "
                        "alias or group"
                    )
                self._by_alias[a] = c
        for g, members in self.groups.items():
            if g in self._by_name:
                raise TaxonomyError(f"taxonomy {name!r}: group {g!r} is also a class name")
            for m in members:
                if m not in self._by_name:
                    raise TaxonomyError(
                        f"taxonomy {name!r}: group {g!r} names {m!r}, which is not a class"
                    )
        # loose keys: a key reached from two different targets is ambiguous and unusable
        loose: dict[str, tuple[tuple[TaxonomyClass, ...], str] | None] = {}
        targets = [(c.name, (c,), "normalized") for c in self.classes]
        targets += [(a, (c,), "normalized") for c in self.classes for a in c.aliases]
        targets += [
            (g, tuple(self._by_name[m] for m in ms), "group") for g, ms in self.groups.items()
        ]
        for text, target, kind in targets:
            key = normalize_name(text)
            if key in loose and (loose[key] is None or loose[key][0] != target):
                loose[key] = None
            else:
                loose.setdefault(key, (target, kind))
        self._by_loose = loose

    # ------------------------------------------------------------------ train space
    @cached_property
    def train_classes(self) -> list[TaxonomyClass]:
        """Non-ignored classes ordered by train id."""
        return sorted((c for c in self.classes if not c.ignore), key=lambda c: c.train_id)

    @property
    def num_classes(self) -> int:
        """Number of train ids (classes a model predicts)."""
        return len(self.train_classes)

    @property
    def train_names(self) -> list[str]:
        return [c.name for c in self.train_classes]

    # ------------------------------------------------------------------ equality
    # Two taxonomies are "the same" for a purpose when the ids that purpose reads mean
    # the same classes; their names (a renamed copy) do not matter.
    def same_train_space(self, other: Taxonomy) -> bool:
        """Whether train ids mean the same classes in both: the same train class names in
        the same order. The rule for anything stored in train ids: model outputs and
        checkpoints, pseudo-label PNGs, a mapping's source side, projected evaluation."""
        return self.train_names == other.train_names

    def same_label_space(self, other: Taxonomy) -> bool:
        """Whether raw label files mean the same in both: the same classes (raw ids,
        names, colours, ignore flags, train ids) and label format. The rule for reading
        raw labels through a mapping (a mapping's extra side is indexed by raw ids)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return (mine["classes"], self.label_format) == (theirs["classes"], other.label_format)

    @cached_property
    def train_colors(self) -> np.ndarray:
        """``(num_classes, 3)`` uint8 RGB colours of the train classes."""
        return np.array([c.color for c in self.train_classes], dtype=np.uint8).reshape(-1, 3)

    @cached_property
    def ignore_ids(self) -> list[int]:
        """Raw ids of ignored classes."""
        return [c.id for c in self.classes if c.ignore]

    # ------------------------------------------------------------------ lookups
    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return f"Taxonomy({self.name!r}, {len(self.classes)} classes, {self.num_classes} train ids)"

    def lookup(self, name: str) -> NameMatch:
        """Resolve a name: the class name, then an alias, then a group, then a loose match
        (:func:`normalize_name`: case, outer spaces, ``_``/``-``/space runs) where that is
        unambiguous.

        Raises:
            TaxonomyError: unknown or ambiguous name; the message suggests close matches.
        """
        text = str(name)
        if text in self._by_name:
            return NameMatch(text, (self._by_name[text],), "exact")
        if text in self._by_alias:
            return NameMatch(text, (self._by_alias[text],), "alias")
        if text in self.groups:
            return NameMatch(text, tuple(self._by_name[m] for m in self.groups[text]), "group")
        key = normalize_name(text)
        if key in self._by_loose:
            entry = self._by_loose[key]
            if entry is None:
                raise TaxonomyError(
                    f"{text!r} matches several classes of taxonomy {self.name!r} loosely "
                    "(case, spaces, '_' or '-'); write the exact name"
                )
            return NameMatch(text, entry[0], entry[1])
        known = list(self._by_name) + list(self._by_alias) + list(self.groups)
        close = difflib.get_close_matches(text, known, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise TaxonomyError(f"{text!r} is not a class of taxonomy {self.name!r}.{hint}")

    def get(self, name: str) -> TaxonomyClass:
        """The one class called ``name`` (see :meth:`lookup` for the matching rules).

        Raises:
            TaxonomyError: unknown name (the message suggests close matches), or a group
                name, which stands for several classes.
        """
        match = self.lookup(name)
        if len(match.classes) != 1:
            raise TaxonomyError(
                f"{name!r} is a group of {len(match.classes)} classes of taxonomy "
                f"{self.name!r} ({', '.join(c.name for c in match.classes)}), not one class"
            )
        return match.classes[0]

    def by_id(self, raw_id: int) -> TaxonomyClass:
        try:
            return self._by_id[int(raw_id)]
        except KeyError:
            raise TaxonomyError(f"id {raw_id} is not in taxonomy {self.name!r}") from None

    def train_id_of(self, name: str) -> int:
        """Train id of a class name (``IGNORE_INDEX`` for ignored classes)."""
        return self.get(name).train_id

    @cached_property
    def lut(self) -> np.ndarray:
        """``(N,)`` int16 lookup raw id -> train id; ``IGNORE_INDEX`` for ignored classes,
        :data:`UNKNOWN_ID` for ids not in the taxonomy. ``N >= 256``."""
        size = max(256, max((c.id for c in self.classes), default=0) + 1)
        table = np.full(size, UNKNOWN_ID, dtype=np.int16)
        for c in self.classes:
            table[c.id] = c.train_id
        return table

    def unknown_ids(self, raw: np.ndarray) -> list[int]:
        """Sorted raw ids present in ``raw`` that are not in the taxonomy."""
        raw = np.asarray(raw)
        if raw.size == 0:
            return []
        lut = self.lut
        lo, hi = int(raw.min()), int(raw.max())
        if lo >= 0 and hi < len(lut):
            # one pass of bincount instead of a sort (np.unique): label maps are small ints
            present = np.flatnonzero(
                np.bincount(raw.ravel().astype(np.intp, copy=False), minlength=hi + 1)
            )
            return [int(v) for v in present[lut[present] == UNKNOWN_ID]]
        values = np.unique(raw)
        bad = values[(values < 0) | (values >= len(lut))].tolist()
        inside = values[(values >= 0) & (values < len(lut))]
        bad += inside[lut[inside] == UNKNOWN_ID].tolist()
        return sorted(int(v) for v in bad)

    def unknown_ids_error(self, bad: list[int]) -> ValueError:
        """The error for raw ids ``bad`` that are not in the taxonomy (listed)."""
        return ValueError(
            f"label ids {bad[:10]} are not in taxonomy {self.name!r} "
            f"(known ids: {sorted(self._by_id)[:40]})"
        )

    @cached_property
    def _train_lut(self) -> np.ndarray:
        """``(N,)`` int16 raw id -> train id with unknown ids as ``UNKNOWN_ID``."""
        return self.lut.astype(np.int16)

    def to_train_ids(self, raw: np.ndarray, *, unknown_as_ignore: bool = False) -> np.ndarray:
        """Map a raw-id label map ``(H, W)`` to train ids (uint8, ``IGNORE_INDEX`` = ignore).

        Raises:
            ValueError: ``raw`` holds ids outside the taxonomy (listed in the message),
                unless ``unknown_as_ignore``.
        """
        raw = np.asarray(raw)
        lut = self._train_lut
        in_range = raw.size == 0 or (int(raw.min()) >= 0 and int(raw.max()) < len(lut))
        out = lut[raw] if in_range else lut[np.clip(raw, 0, len(lut) - 1)]
        unknown = out == UNKNOWN_ID
        if not in_range:
            unknown |= (raw < 0) | (raw >= len(lut))
        if unknown.any():
            if not unknown_as_ignore:
                raise self.unknown_ids_error(self.unknown_ids(raw))
            out = np.where(unknown, IGNORE_INDEX, out)
        return out.astype(np.uint8)

    # ------------------------------------------------------------------ colours
    @cached_property
    def _color_table(self) -> dict[int, int]:
        table: dict[int, int] = {}
        for c in self.classes:
            key = (c.color[0] << 16) | (c.color[1] << 8) | c.color[2]
            table.setdefault(key, c.id)
        return table

    def colors_to_ids(self, rgb: np.ndarray, *, unknown_as_ignore: bool = False) -> np.ndarray:
        """Convert a colour-coded label image ``(H, W, 3)`` uint8 to raw ids ``(H, W)`` int32.

        Raises:
            ValueError: a colour not in the palette (listed), unless ``unknown_as_ignore``
                (then such pixels get the first ignored class's id, or ``IGNORE_INDEX``).
        """
        rgb = np.asarray(rgb, dtype=np.uint32)
        keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        uniq, inverse = np.unique(keys, return_inverse=True)
        table = self._color_table
        fallback = self.ignore_ids[0] if self.ignore_ids else IGNORE_INDEX
        mapped = np.empty(len(uniq), dtype=np.int32)
        unknown = []
        for i, k in enumerate(uniq.tolist()):
            if k in table:
                mapped[i] = table[k]
            else:
                unknown.append((k >> 16, (k >> 8) & 255, k & 255))
                mapped[i] = fallback
        if unknown and not unknown_as_ignore:
            raise ValueError(
                f"colours {unknown[:5]} are not in the palette of taxonomy {self.name!r}"
            )
        return mapped[inverse.reshape(keys.shape)]

    def colorize(
        self, train_ids: np.ndarray, ignore_color: tuple[int, int, int] = (0, 0, 0)
    ) -> np.ndarray:
        """``(H, W)`` train ids -> ``(H, W, 3)`` uint8 RGB picture."""
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[:] = ignore_color
        palette[: self.num_classes] = self.train_colors
        return palette[np.asarray(train_ids, dtype=np.int64).clip(0, 255)]

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (as in the YAML files); embedded in checkpoints."""
        return {
            "name": self.name,
            "title": self.title,
            "label_format": self.label_format,
            "source": self.source,
            "notes": self.notes,
            **({"aliases": list(self.aliases)} if self.aliases else {}),
            **({"groups": {k: list(v) for k, v in self.groups.items()}} if self.groups else {}),
            "classes": [
                {
                    "id": c.id,
                    "name": c.name,
                    "color": list(c.color),
                    **({"ignore": True} if c.ignore else {"train_id": c.train_id}),
                    **({"aliases": list(c.aliases)} if c.aliases else {}),
                }
                for c in self.classes
            ],
        }

    #: Build and validate from plain data; see
    #: :func:`~labelbridge.taxonomy.taxonomy_file.taxonomy_from_dict`.
    from_dict = classmethod(taxonomy_from_dict)
    #: Load a taxonomy file; see :func:`~labelbridge.taxonomy.taxonomy_file.taxonomy_from_file`.
    from_file = classmethod(taxonomy_from_file)
