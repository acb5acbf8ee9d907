"""Partial labels: an extra dataset's own label read as the *set* of source classes the
pixel may truly be (the ontology mapping's ``allowed`` row), for a loss over that set
(``-log sum_{c in set} p_c``, Bevandić et al.) instead of a teacher's pseudo-label.

Several extra datasets train together, so their sets are stacked into one table: the
sets of dataset ``d`` are rows ``offset_d + e`` (``e`` = the pixel's extra raw id), and a
pixel carries one integer, its row, or :data:`NO_SET` where its label allows nothing
(an all-False row: the mapping's "write ignore", or an ignored class under
``unlabelled: ignore``).

**The void option** (a row that lists ``ignore`` beside its classes: "sky or building,
or something outside the source taxonomy"). With no teacher to tell the outside case
apart, ``void_option: allowed`` trains such pixels towards their listed classes (the
outside case has no class of its own to go to), ``ignore`` leaves them out.

Numpy only (the loss itself is :func:`labelbridge.engine.targets.partial_nll`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from labelbridge.taxonomy.ontology import Ontology

#: A pixel without a set (its label allows no source class).
NO_SET = -1
#: How rows with the void option are read (see the module doc).
VOID_OPTIONS = ("allowed", "ignore")
VoidOption = Literal["allowed", "ignore"]


def partial_sets(onto: Ontology, void_option: VoidOption = "allowed") -> np.ndarray:
    """``(E, K)`` bool: the source classes a pixel with extra raw id ``e`` may be.

    Args:
        onto: the mapping (extra -> source).
        void_option: ``allowed`` or ``ignore`` for rows with the void option.
    """
    if void_option not in VOID_OPTIONS:
        raise ValueError(f"void_option must be one of {VOID_OPTIONS}, got {void_option!r}")
    sets = np.array(onto.allowed, dtype=bool, copy=True)
    if void_option == "ignore":
        sets[onto.void_allowed] = False
    return sets


@dataclass(frozen=True)
class PartialSetTable:
    """The stacked sets of several mappings (one block per partially labelled dataset).

    Attributes:
        table: ``(S, K)`` bool, every block's rows in order.
        offsets: first row of each block.
    """

    table: np.ndarray
    offsets: tuple[int, ...]

    @classmethod
    def stack(cls, blocks: list[np.ndarray]) -> PartialSetTable:
        """Stack ``(E_d, K)`` blocks (all of one ``K``).

        Raises:
            ValueError: no block, or blocks of different class counts.
        """
        if not blocks:
            raise ValueError("a partial-label table needs at least one mapping")
        widths = {b.shape[1] for b in blocks}
        if len(widths) != 1:
            raise ValueError(f"partial-label sets of different class counts: {sorted(widths)}")
        offsets = tuple(int(v) for v in np.cumsum([0] + [b.shape[0] for b in blocks[:-1]]))
        return cls(np.concatenate(blocks).astype(bool), offsets)


def set_ids(raw: np.ndarray, sets: np.ndarray, offset: int) -> np.ndarray:
    """``(H, W)`` extra raw ids -> ``(H, W)`` int32 table rows (``offset + id``), or
    :data:`NO_SET` where the id's set is empty.

    Raises:
        ValueError: ids outside ``0..E-1``.
    """
    raw = np.asarray(raw)
    if raw.size and (raw.min() < 0 or raw.max() >= sets.shape[0]):
        raise ValueError(
            f"extra ids must lie in 0..{sets.shape[0] - 1}, got {raw.min()}..{raw.max()}"
        )
    nonempty = sets.any(axis=1)
    return np.where(nonempty[raw], raw.astype(np.int32) + offset, NO_SET).astype(np.int32)
