"""Projected evaluation: predictions in a source taxonomy scored against ground truth of
an extra taxonomy through :attr:`Ontology.projection <labelbridge.taxonomy.Ontology.projection>`.

``projection[k]`` is the extra train id of source train class ``k``, or ``IGNORE_INDEX``
when the source class has no counterpart in the extra taxonomy. A projected
``IGNORE_INDEX`` is a **miss** (false negative of the ground-truth class), never a
skipped pixel: a model cannot gain by predicting classes the extra taxonomy lacks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.evaluation.confusion import (
    ArrayLike,
    ConfusionMatrix,
    count_confusion,
    pair_counts,
)
from labelbridge.evaluation.metrics import SegmentationMetrics
from labelbridge.taxonomy import Ontology, Taxonomy
from labelbridge.threads import default_workers, ordered_map


def projection_table(ontology: Ontology) -> np.ndarray:
    """``(K + 1,)`` int64 lookup: source train id -> extra train id; the last entry
    (``IGNORE_INDEX``) serves every prediction outside ``0..K-1``."""
    return np.concatenate([ontology.projection.astype(np.int64), [IGNORE_INDEX]])


def project_predictions(pred: ArrayLike, ontology: Ontology) -> ArrayLike:
    """Map predictions from source train ids to extra train ids.

    Args:
        pred: integer array or tensor of any shape (typically ``(H, W)`` or ``(B, H, W)``)
            holding source train ids ``0..K-1``; other values (e.g. ``IGNORE_INDEX``)
            stay ``IGNORE_INDEX``.
        ontology: the mapping; ``ontology.source`` is the prediction taxonomy.

    Returns:
        Same shape and container (numpy array or tensor on the same device), int64,
        extra train ids or ``IGNORE_INDEX`` where the source class has no counterpart.

    Example:
        >>> from labelbridge.taxonomy import load_ontology
        >>> onto = load_ontology("camvid11_to_cityscapes")
        >>> project_predictions(np.array([0, 10, 3, 255]), onto).tolist()  # road, sky, wall
        [3, 0, 1, 255]
    """
    k = ontology.source.num_classes
    table = projection_table(ontology)
    if isinstance(pred, torch.Tensor):
        lut = torch.from_numpy(table).to(pred.device)
        p = pred.long()
        index = torch.where((p >= 0) & (p < k), p, torch.full_like(p, k))
        return lut[index]
    p = np.asarray(pred).astype(np.int64, copy=False)
    index = np.where((p >= 0) & (p < k), p, k)
    return table[index]


def evaluate_label_maps(
    predictions: Iterable[ArrayLike],
    targets: Iterable[ArrayLike],
    *,
    taxonomy: Taxonomy | None = None,
    num_classes: int | None = None,
    ontology: Ontology | None = None,
    workers: int | None = None,
) -> SegmentationMetrics:
    """Score pairs of label maps in train ids with one summed confusion matrix.

    Pairs are counted in ``workers`` threads (numpy's kernels release the GIL), at most
    a few ahead of the iterables, which are read in the caller's thread; the sum does
    not depend on the number of workers.

    Args:
        predictions: ``(H, W)`` or ``(B, H, W)`` integer maps; train ids of
            ``ontology.source`` when ``ontology`` is given (they are projected),
            otherwise of the evaluated taxonomy.
        targets: matching ground truth in train ids of the evaluated taxonomy
            (``ontology.extra`` when given), ``IGNORE_INDEX`` = ignored.
        taxonomy: the evaluated taxonomy (class count and names); defaults to
            ``ontology.extra``.
        num_classes: class count when no taxonomy is given.
        ontology: project predictions through this mapping first.
        workers: counting threads (``0``: the caller's thread; default: the CPUs, at
            most 4).

    Returns:
        Metrics over the evaluated taxonomy's classes.

    Raises:
        ValueError: the class count cannot be determined, the taxonomy contradicts the
            ontology, or the number of predictions and targets differ.
    """
    if ontology is not None:
        if taxonomy is not None and not taxonomy.same_train_space(ontology.extra):
            raise ValueError(
                f"evaluated taxonomy {taxonomy.name!r} is not the ontology's extra taxonomy "
                f"{ontology.extra.name!r} ({ontology.origin})"
            )
        taxonomy = ontology.extra
    if taxonomy is not None:
        num_classes, names = taxonomy.num_classes, taxonomy.train_names
    elif num_classes is not None:
        names = None
    else:
        raise ValueError("give a taxonomy, an ontology or num_classes")
    cm = ConfusionMatrix(num_classes, class_names=names)
    k = num_classes

    def count(pair: tuple[ArrayLike, ArrayLike]) -> ArrayLike:
        pred, target = pair
        if pred is _MISSING or target is _MISSING:
            raise ValueError("predictions and targets differ in number")
        if ontology is not None:
            pred = project_predictions(pred, ontology)
        if isinstance(pred, torch.Tensor) and pred.device.type != "cpu":
            return count_confusion(pred, target, k, pred.device)  # counted where they are
        return pair_counts(pred, target, k)

    pairs = itertools.zip_longest(predictions, targets, fillvalue=_MISSING)
    for counts in ordered_map(
        count, pairs, workers=default_workers() if workers is None else workers
    ):
        cm.add_counts(counts)
    return cm.compute()


_MISSING: Any = object()
