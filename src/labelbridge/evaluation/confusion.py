"""A confusion matrix summed over images (and across processes), vectorised with bincount.

Example:
    >>> import numpy as np
    >>> cm = ConfusionMatrix(num_classes=3)
    >>> cm.update(np.array([[0, 1], [2, 2]]), np.array([[0, 1], [1, 255]]))
    >>> round(cm.compute().miou, 4)   # IoUs 1, 0.5, 0 -> mean 0.5
    0.5
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.evaluation.metrics import SegmentationMetrics, metrics_from_counts

ArrayLike = np.ndarray | torch.Tensor


def _as_long_tensor(values: ArrayLike, device: torch.device) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        tensor = values
    else:
        array = np.asarray(values)
        if array.dtype == np.uint16 or array.dtype == np.uint32:
            array = array.astype(np.int64)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device=device, dtype=torch.int64)


def _as_numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _target_error(bad_values: list[int], k: int) -> ValueError:
    return ValueError(
        f"target holds values {bad_values[:10]} outside 0..{k - 1} (and not IGNORE_INDEX={IGNORE_INDEX})"
    )


#: Entry of a :func:`fold_histogram` table for a value that must not occur.
FORBIDDEN = -1


class UnmappedValues(ValueError):
    """Values present in a map whose fold table entry is :data:`FORBIDDEN`.

    Attributes:
        side: ``"target"`` or ``"prediction"``.
        values: the sorted values.
    """

    def __init__(self, side: str, values: list[int]) -> None:
        super().__init__(f"{side} holds values {values[:10]} that have no class")
        self.side = side
        self.values = values


def joint_histogram(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(256, 256)`` int64 counts of ``(target value, prediction value)`` over two uint8
    maps of one shape (row: target, column: prediction): one ``bincount`` of
    ``target << 8 | pred``, whatever the values mean."""
    t, p = target.reshape(-1), pred.reshape(-1)
    return np.bincount((t.astype(np.uint16) << 8) | p, minlength=1 << 16).reshape(256, 256)


def fold_histogram(
    hist: np.ndarray, target_table: np.ndarray, pred_table: np.ndarray, k: int
) -> np.ndarray:
    """Fold a :func:`joint_histogram` into ``(K, K + 1)`` int64 confusion counts.

    Args:
        hist: ``(256, 256)`` counts of (target value, prediction value).
        target_table: ``(256,)`` ints: the train id ``0..K-1`` of each target value,
            ``IGNORE_INDEX`` (not counted) or :data:`FORBIDDEN`.
        pred_table: ``(256,)`` ints: the train id ``0..K-1`` of each prediction value,
            ``K`` (a miss) or :data:`FORBIDDEN`.
        k: the class count ``K``.

    Raises:
        UnmappedValues: a forbidden value is present (targets are checked first).
    """
    nz = np.flatnonzero(hist)
    rows, cols = target_table[nz >> 8], pred_table[nz & 255]
    for side, table, values in (("target", rows, nz >> 8), ("prediction", cols, nz & 255)):
        bad = table == FORBIDDEN
        if bad.any():
            raise UnmappedValues(side, np.unique(values[bad]).tolist())
    keep = rows != IGNORE_INDEX
    index = rows[keep].astype(np.int64) * (k + 1) + cols[keep]
    counts = np.bincount(index, weights=hist.reshape(-1)[nz[keep]], minlength=k * (k + 1))
    return counts.round().astype(np.int64).reshape(k, k + 1)


@functools.lru_cache(maxsize=64)
def train_id_tables(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The (read-only) fold tables of maps already in train ids ``0..K-1``: targets may
    also hold ``IGNORE_INDEX``; predictions outside ``0..K-1`` are misses."""
    target = np.full(256, FORBIDDEN, dtype=np.int64)
    target[:k] = np.arange(k)
    target[IGNORE_INDEX] = IGNORE_INDEX
    pred = np.full(256, k, dtype=np.int64)
    pred[:k] = np.arange(k)
    target.flags.writeable = pred.flags.writeable = False
    return target, pred


def _count_numpy(pred: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """``(K, K + 1)`` int64 counts on the CPU: a :func:`joint_histogram` of uint8 maps
    folded with :func:`train_id_tables` (other integer types are first brought to uint8:
    predictions outside ``0..K-1`` become 255, a miss)."""
    t, p = target.reshape(-1), pred.reshape(-1)
    if t.dtype != np.uint8:
        if t.size and (int(t.min()) < 0 or int(t.max()) > IGNORE_INDEX):
            outside = (t < 0) | (t > IGNORE_INDEX)
            raise _target_error(np.unique(t[outside]).tolist(), k)
        t = t.astype(np.uint8)
    if p.dtype != np.uint8:
        p = np.where((p >= 0) & (p < k), p, IGNORE_INDEX).astype(np.uint8)
    try:
        return fold_histogram(joint_histogram(p, t), *train_id_tables(k), k)
    except UnmappedValues as exc:
        raise _target_error(exc.values, k) from None


def _check_pair(pred: ArrayLike, target: ArrayLike) -> None:
    """Raise ``ValueError`` unless both are integer maps of one shape, 2-D or 3-D."""
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(
            f"prediction shape {tuple(pred.shape)} differs from target {tuple(target.shape)}"
        )
    if len(pred.shape) not in (2, 3):
        raise ValueError(f"expected (H, W) or (B, H, W) label maps, got shape {tuple(pred.shape)}")
    for name, value in (("prediction", pred), ("target", target)):
        is_float = (
            value.dtype.is_floating_point
            if isinstance(value, torch.Tensor)
            else np.issubdtype(np.asarray(value).dtype, np.floating)
        )
        if is_float:
            raise ValueError(f"{name} must hold integer class ids, got dtype {value.dtype}")


def pair_counts(pred: ArrayLike, target: ArrayLike, k: int) -> np.ndarray:
    """``(K, K + 1)`` int64 counts of one prediction / ground-truth pair on the CPU (the
    counting :meth:`ConfusionMatrix.update` does; callable from worker threads, whose
    results :meth:`ConfusionMatrix.add_counts` sums).

    Raises:
        ValueError: shapes differ or are not 2-D / 3-D, float inputs, or the target holds
            values other than ``0..K-1`` and ``IGNORE_INDEX``.
    """
    _check_pair(pred, target)
    return _count_numpy(_as_numpy(pred), _as_numpy(target), k)


def count_confusion(
    pred: ArrayLike, target: ArrayLike, k: int, device: torch.device
) -> torch.Tensor:
    """``(K, K + 1)`` int64 counts computed on ``device`` (no boolean compaction)."""
    p = _as_long_tensor(pred, device).reshape(-1)
    t = _as_long_tensor(target, device).reshape(-1)
    keep = t != IGNORE_INDEX
    bad = keep & ((t < 0) | (t >= k))
    if bool(bad.any()):
        raise _target_error(torch.unique(t[bad]).tolist(), k)
    p = torch.where((p >= 0) & (p < k), p, torch.full_like(p, k))
    dump = k * (k + 1)
    index = torch.where(keep, t * (k + 1) + p, torch.full_like(t, dump))
    return torch.bincount(index, minlength=dump + 1)[:dump].view(k, k + 1)


class ConfusionMatrix:
    """Pixel counts of (ground truth, prediction) pairs over ``K`` classes.

    Internally a ``(K, K + 1)`` int64 tensor: column ``K`` counts ground-truth pixels
    whose prediction lies outside ``0..K-1`` (for instance ``IGNORE_INDEX`` after a
    projection to a taxonomy in which the predicted class has no counterpart). Such
    predictions are **misses**: false negatives of the ground-truth class and false
    positives of no class, exactly as the Cityscapes scripts treat predictions of
    classes that are not evaluated.

    Ground-truth pixels equal to ``IGNORE_INDEX`` are skipped.

    Args:
        num_classes: number of classes ``K`` (train ids ``0..K-1``).
        class_names: optional ``K`` names carried into the metrics.
        device: where the counts live; by default the device of the first tensor given
            to :meth:`update` (CPU for numpy inputs).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        class_names: list[str] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if num_classes >= IGNORE_INDEX:
            raise ValueError(
                f"num_classes must be < IGNORE_INDEX ({IGNORE_INDEX}), got {num_classes}"
            )
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names is not None else None
        self._device_fixed = device is not None
        self.counts = torch.zeros(
            (num_classes, num_classes + 1), dtype=torch.int64, device=device or "cpu"
        )

    # ------------------------------------------------------------------ views
    @property
    def device(self) -> torch.device:
        return self.counts.device

    @property
    def matrix(self) -> torch.Tensor:
        """``(K, K)`` int64 counts, rows = ground truth, columns = prediction."""
        return self.counts[:, : self.num_classes]

    @property
    def unmatched(self) -> torch.Tensor:
        """``(K,)`` int64: ground-truth pixels whose prediction was outside ``0..K-1``."""
        return self.counts[:, self.num_classes]

    # ------------------------------------------------------------------ accumulation
    def update(self, pred: ArrayLike, target: ArrayLike) -> None:
        """Add one image or a batch.

        Args:
            pred: ``(H, W)`` or ``(B, H, W)`` integer predictions (train ids; any value
                outside ``0..K-1`` is a miss for the target class).
            target: same shape, integer ground truth in ``0..K-1`` or ``IGNORE_INDEX``.
                Torch tensors may be on any device; numpy arrays are accepted too.

        Raises:
            ValueError: shapes differ, wrong number of dimensions, float inputs, or the
                target holds values other than ``0..K-1`` and ``IGNORE_INDEX``.
        """
        _check_pair(pred, target)
        if (
            not self._device_fixed
            and isinstance(pred, torch.Tensor)
            and pred.device != self.counts.device
            and not bool(self.counts.any())
        ):
            self.counts = self.counts.to(pred.device)
        if self.counts.device.type == "cpu":
            self.counts += torch.from_numpy(
                _count_numpy(_as_numpy(pred), _as_numpy(target), self.num_classes)
            )
        else:
            self.counts += count_confusion(pred, target, self.num_classes, self.counts.device)

    def add_counts(self, counts: ArrayLike) -> None:
        """Add ``(K, K + 1)`` int64 counts made by :func:`pair_counts` or
        :func:`count_confusion` (on any device)."""
        if tuple(counts.shape) != tuple(self.counts.shape):
            raise ValueError(
                f"counts of shape {tuple(counts.shape)}, expected {tuple(self.counts.shape)}"
            )
        self.counts += torch.as_tensor(counts).to(self.counts.device)

    def reset(self) -> None:
        """Zero all counts (the device stays)."""
        self.counts.zero_()

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts to this one (in place) and return ``self``."""
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge {other.num_classes}-class into {self.num_classes}-class matrix"
            )
        self.counts += other.counts.to(self.counts.device)
        return self

    def __iadd__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return self.merge(other)

    def all_reduce(self) -> ConfusionMatrix:
        """Sum the counts across ``torch.distributed`` processes (in place).

        A no-op when ``torch.distributed`` is unavailable or not initialised. Every
        process must call it. Never average per-process mIoUs: reduce, then compute.
        """
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.counts, op=dist.ReduceOp.SUM)
        return self

    # ------------------------------------------------------------------ results
    def compute(self) -> SegmentationMetrics:
        """IoU, mIoU (over classes present in ground truth or prediction), accuracies."""
        return metrics_from_counts(self.counts.cpu().numpy(), self.class_names)

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={int(self.counts.sum())}, device={self.device})"
