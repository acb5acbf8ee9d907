"""The parts a taxonomy is made of: its classes (:class:`TaxonomyClass`), the label
formats, and how a written name is matched to a class (:func:`normalize_name`,
:class:`NameMatch`, the result of :meth:`~labelbridge.taxonomy.taxonomy.Taxonomy.lookup`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: How a dataset's label files store classes: raw ids (``"id"``) or RGB colours (``"color"``).
LABEL_FORMATS = ("id", "color")

#: How a name was resolved by :meth:`Taxonomy.lookup`.
MATCH_KINDS = ("exact", "alias", "normalized", "group")
_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    """The key used for loose name matching: case-folded, with spaces, underscores and
    hyphens removed (``"Traffic_Light "``, ``"trafficlight"`` -> ``"trafficlight"``)."""
    return _SEPARATORS.sub("", str(name).casefold())


@dataclass(frozen=True)
class NameMatch:
    """Result of :meth:`Taxonomy.lookup`.

    Attributes:
        name: the name as asked for.
        classes: the classes it stands for (several only for a group).
        kind: one of :data:`MATCH_KINDS`; anything but ``"exact"`` is worth reporting.
    """

    name: str
    classes: tuple[TaxonomyClass, ...]
    kind: str

    @property
    def canonical(self) -> str:
        """The class name (or, for a group, the name as asked for)."""
        return self.classes[0].name if self.kind != "group" else self.name


@dataclass(frozen=True)
class TaxonomyClass:
    """One class of a taxonomy.

    Attributes:
        id: value stored in label files (raw id), ``0 <= id < 65536``.
        name: unique class name within the taxonomy.
        color: RGB colour, each ``0..255`` (used for colour-coded labels and pictures).
        ignore: ``True`` for classes ignored in training and evaluation.
        train_id: position in the train-id space, or ``IGNORE_INDEX`` when ignored.
        aliases: other spellings of the name (another toolkit's or file's), resolved
            to this class by :meth:`Taxonomy.lookup`.
    """

    id: int
    name: str
    color: tuple[int, int, int]
    ignore: bool
    train_id: int
    aliases: tuple[str, ...] = field(default=())
