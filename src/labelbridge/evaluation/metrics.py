"""Segmentation scores computed from one summed confusion matrix.

The definitions follow the official Cityscapes evaluation
(``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``):

* IoU of class ``k`` = ``TP / (TP + FP + FN)`` over pixels whose ground truth is not
  ignored; a prediction outside the evaluated classes is a false negative of the
  ground-truth class (and a false positive of nothing).
* A class with ``TP + FP + FN == 0`` (absent from both ground truth and prediction)
  has IoU NaN and is left out of the mean; the mean IoU averages the remaining classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SegmentationMetrics:
    """Scores of one evaluation.

    Attributes:
        per_class_iou: ``(K,)`` float64 IoU in ``[0, 1]``; NaN for classes absent from
            both ground truth and prediction.
        miou: mean of the non-NaN entries of ``per_class_iou`` (NaN when all are NaN).
        pixel_accuracy: correctly predicted / evaluated pixels, in ``[0, 1]``.
        per_class_accuracy: ``(K,)`` float64 recall of each class (NaN where the class
            has no ground-truth pixels).
        mean_accuracy: mean of the non-NaN entries of ``per_class_accuracy``.
        confusion: ``(K, K)`` int64, rows = ground truth, columns = prediction.
        unmatched: ``(K,)`` int64, pixels of each ground-truth class whose prediction
            was outside ``0..K-1`` (e.g. ``IGNORE_INDEX`` from a projection); they count
            as false negatives.
        class_names: ``K`` names, or ``None``.
    """

    per_class_iou: np.ndarray
    miou: float
    pixel_accuracy: float
    per_class_accuracy: np.ndarray
    mean_accuracy: float
    confusion: np.ndarray
    unmatched: np.ndarray
    class_names: list[str] | None = field(default=None)

    @property
    def num_classes(self) -> int:
        return int(self.per_class_iou.shape[0])

    @property
    def num_pixels(self) -> int:
        """Evaluated pixels (ground truth not ignored)."""
        return int(self.confusion.sum() + self.unmatched.sum())

    def names(self) -> list[str]:
        """Class names, or ``"class_<k>"`` where none were given."""
        if self.class_names is not None:
            return list(self.class_names)
        return [f"class_{k}" for k in range(self.num_classes)]

    def iou_by_name(self) -> dict[str, float]:
        """``{class name: IoU}`` (NaN kept)."""
        return {n: float(v) for n, v in zip(self.names(), self.per_class_iou, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data; NaN becomes ``None``."""
        names = self.names()
        return {
            "miou": _json_float(self.miou),
            "pixel_accuracy": _json_float(self.pixel_accuracy),
            "mean_accuracy": _json_float(self.mean_accuracy),
            "num_pixels": self.num_pixels,
            "num_classes": self.num_classes,
            "per_class_iou": {
                n: _json_float(v) for n, v in zip(names, self.per_class_iou, strict=True)
            },
            "per_class_accuracy": {
                n: _json_float(v) for n, v in zip(names, self.per_class_accuracy, strict=True)
            },
            "class_names": names,
            "confusion": self.confusion.tolist(),
            "unmatched": self.unmatched.tolist(),
        }


def _json_float(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _nanmean(values: np.ndarray) -> float:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


def metrics_from_counts(
    counts: np.ndarray, class_names: list[str] | None = None
) -> SegmentationMetrics:
    """Scores from a ``(K, K + 1)`` count matrix.

    Args:
        counts: ``(K, K + 1)`` integer counts; ``counts[t, p]`` = pixels with ground truth
            ``t`` predicted as ``p``; column ``K`` holds predictions outside ``0..K-1``.
        class_names: optional ``K`` names.

    Returns:
        The metrics (float64 arithmetic, as the Cityscapes scripts).

    Raises:
        ValueError: wrong shape or a wrong number of names.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != counts.shape[0] + 1:
        raise ValueError(f"counts must have shape (K, K+1), got {counts.shape}")
    num_classes = counts.shape[0]
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")
    confusion = counts[:, :num_classes]
    unmatched = counts[:, num_classes]
    tp = np.diag(confusion).astype(np.int64)
    gt_total = counts.sum(axis=1)  # every evaluated pixel of the class, matched or not
    pred_total = confusion.sum(axis=0)
    fn = gt_total - tp
    fp = pred_total - tp
    denom = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(denom > 0, tp / np.maximum(denom, 1), np.nan).astype(np.float64)
        acc = np.where(gt_total > 0, tp / np.maximum(gt_total, 1), np.nan).astype(np.float64)
    total = int(gt_total.sum())
    pixel_acc = float(tp.sum() / total) if total else float("nan")
    return SegmentationMetrics(
        per_class_iou=iou,
        miou=_nanmean(iou),
        pixel_accuracy=pixel_acc,
        per_class_accuracy=acc,
        mean_accuracy=_nanmean(acc),
        confusion=confusion.copy(),
        unmatched=unmatched.copy(),
        class_names=list(class_names) if class_names is not None else None,
    )
