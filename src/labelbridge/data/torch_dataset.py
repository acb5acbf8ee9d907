"""A torch ``Dataset`` over a reader: images plus train ids of a target taxonomy, from
the reader's own labels (``"gt"``) or from a pseudo-label folder (its layout:
:mod:`labelbridge.data.pseudo_folder`); or, in a stage that learns from soft or partial
labels, a target stack (:mod:`labelbridge.data.target_stack`) holding them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data.base import MISSING_LABEL, SegmentationDataset, SkipRecord, read_label_png
from labelbridge.data.pseudo_folder import (
    SOFT_SUFFIX,
    check_pseudo_taxonomy,
    label_relpath,
    read_soft_labels,
)
from labelbridge.data.target_stack import TargetLayout
from labelbridge.errors import ConfigError, DatasetError
from labelbridge.taxonomy import Taxonomy
from labelbridge.taxonomy.partial import set_ids

log = logging.getLogger(__name__)

T = TypeVar("T")


def resize_pair(
    image: np.ndarray, label: np.ndarray, size: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``(H, W, 3)`` uint8 bilinear and the label nearest to ``size = (W, H)``: an
    ``(H, W)`` uint8 label, or a ``(C, H, W)`` float32 target stack channel by channel."""
    if size is None or (image.shape[1], image.shape[0]) == tuple(size):
        return image, label
    img = np.array(Image.fromarray(image).resize(tuple(size), Image.BILINEAR))
    if label.ndim == 3:
        lab = np.stack(
            [np.array(Image.fromarray(c).resize(tuple(size), Image.NEAREST)) for c in label]
        )
    else:
        lab = np.array(Image.fromarray(label).resize(tuple(size), Image.NEAREST))
    return img, lab


class PartialSource:
    """A reader's own labels read as partial labels: each pixel's extra raw id becomes its
    row in the stage's table of sets (:mod:`labelbridge.taxonomy.partial`).

    Args:
        sets: ``(E, K)`` bool, the sets of this dataset's mapping.
        offset: the first row of this block in the stage's table.
        origin: the mapping (for messages).
        extra: the mapping's extra taxonomy (the reader's labels must be in it).
    """

    def __init__(self, sets: np.ndarray, offset: int, origin: str, *, extra: Taxonomy) -> None:
        self.sets, self.offset, self.origin, self.extra = sets, offset, origin, extra

    def rows(self, raw: np.ndarray, where: Path) -> np.ndarray:
        """``(H, W)`` extra raw ids -> ``(H, W)`` int32 table rows.

        Raises:
            DatasetError: ids outside the mapping's extra taxonomy, naming ``where``.
        """
        try:
            return set_ids(raw, self.sets, self.offset)
        except ValueError as exc:
            raise DatasetError(f"{where}: {exc} (partial labels through {self.origin})") from None


class SegmentationTorchDataset(Dataset):
    """Images and target train ids for training and validation.

    Args:
        reader: the dataset reader.
        taxonomy: the target taxonomy; the returned targets are its train ids.
        labels: ``"gt"`` (the reader's labels, whose taxonomy must equal ``taxonomy``) or
            the path of a pseudo-label folder in ``taxonomy``.
        resize: ``(W, H)`` to resize every image (bilinear) and label (nearest) to, or
            ``None``.
        limit: only the first ``limit`` samples.
        soft: read the pseudo-label folder's soft labels (``<key>_soft.npz``) instead of
            its PNGs.
        partial: the reader's own labels as partial labels (``labels`` is then a
            pseudo-label folder, or ``None`` for no hard labels).
        layout: the stage's target stack, or ``None`` (plain train ids).

    Items are ``(image, target)``: ``(3, H, W)`` uint8 RGB and ``(H, W)`` int64 train ids
    in ``0..K-1`` or ``IGNORE_INDEX``, or, with a stacked ``layout``, a ``(C, H, W)``
    float32 target stack. Under the reader's ``on_error="skip"`` a sample that
    fails to load is logged, recorded in ``reader.skipped`` and replaced by the next one.

    Raises:
        ConfigError: ``"gt"`` with a reader of another taxonomy; a pseudo-label folder of
            another taxonomy; pseudo-labels missing for samples (under ``on_error="raise"``).
    """

    def __init__(
        self,
        reader: SegmentationDataset,
        *,
        taxonomy: Taxonomy,
        labels: str | Path | None = "gt",
        resize: tuple[int, int] | None = None,
        limit: int | None = None,
        soft: bool = False,
        partial: PartialSource | None = None,
        layout: TargetLayout | None = None,
    ) -> None:
        self.reader = reader
        self.taxonomy = taxonomy
        self.layout = layout if layout is not None and layout.stacked else None
        self.soft, self.partial = soft, partial
        if (soft and (self.layout is None or not self.layout.soft_k)) or (
            partial is not None and (self.layout is None or not self.layout.partial)
        ):
            raise ValueError("soft or partial labels need a target layout with their channels")
        #: JSON-lines file that skipped samples are appended to (set by the training run,
        #: so that skips in data-loader worker processes reach the run's report).
        self.skip_log: Path | None = None
        self.resize = tuple(resize) if resize is not None else None
        self.pseudo_dir: Path | None = None
        indices = list(range(len(reader)))
        if limit is not None:
            indices = indices[:limit]
        if partial is not None and not partial.extra.same_train_space(reader.taxonomy):
            raise ConfigError(
                f"{partial.origin}: partial labels of dataset {reader.name!r} are in taxonomy "
                f"{reader.taxonomy.name!r}, but the mapping's extra taxonomy is {partial.extra.name!r}"
            )
        if labels is None:
            if partial is None:
                raise ValueError("a dataset without hard labels needs partial labels")
        elif labels == "gt":
            if not reader.taxonomy.same_train_space(taxonomy):
                raise ConfigError(
                    f"dataset {reader.name!r} ({reader.root}) has labels in taxonomy "
                    f"{reader.taxonomy.name!r}, not the training taxonomy {taxonomy.name!r}; "
                    "use pseudo-labels (labels: {pseudo: DIR}) or, for validation, an ontology mapping"
                )
        else:
            self.pseudo_dir = Path(labels)
            check_pseudo_taxonomy(self.pseudo_dir, taxonomy)
            indices = self._with_pseudo_labels(indices)
        self.indices = indices
        if not self.indices:
            raise DatasetError(
                f"{reader.root}: no usable samples in split {reader.split!r} of {reader.name!r}"
            )

    def _pseudo_path(self, index: int) -> Path:
        assert self.pseudo_dir is not None
        suffix = SOFT_SUFFIX if self.soft else ".png"
        return self.pseudo_dir / label_relpath(self.reader.pairs[index].key, suffix)

    def _with_pseudo_labels(self, indices: list[int]) -> list[int]:
        missing = [i for i in indices if not self._pseudo_path(i).is_file()]
        if missing and self.reader.on_error == "raise":
            raise ConfigError(
                f"{self.pseudo_dir}: {len(missing)} of {len(indices)} samples of {self.reader.name!r} "
                f"have no pseudo-label, e.g. {self._pseudo_path(missing[0])}; finish the "
                "pseudo-labelling run or set on_error: skip"
            )
        if missing:
            log.warning(
                "%s: %d samples without pseudo-labels are skipped", self.pseudo_dir, len(missing)
            )
            for i in missing:  # recorded like every other skip (metrics.json lists them)
                path = self._pseudo_path(i)
                self.reader.skipped.append(
                    SkipRecord(str(path), f"{path}: no pseudo-label for this sample", MISSING_LABEL)
                )
        gone = set(missing)
        return [i for i in indices if i not in gone]

    def __len__(self) -> int:
        return len(self.indices)

    def load_pair(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3)`` uint8 image and ``(H, W)`` uint8 train ids of item ``position``
        (with a stacked layout: its ``(C, H, W)`` float32 target stack).

        Raises:
            DatasetError: unreadable files, missing labels, sizes that differ, or
                pseudo-label values outside the taxonomy.
        """
        index = self.indices[position]
        sample = self.reader.load(index)
        if self.layout is not None:
            return resize_pair(sample.image, self._stack(index, sample), self.resize)
        return resize_pair(sample.image, self._hard(index, sample), self.resize)

    def _stack(self, index: int, sample: Any) -> np.ndarray:
        """The ``(C, H, W)`` target stack of one sample (see :class:`TargetLayout`)."""
        assert self.layout is not None
        h, w = sample.image.shape[:2]
        soft_ids = soft_probs = sets = None
        if self.soft:
            soft_ids, soft_probs = self._soft(index, (h, w))
            hard = np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
        elif self.pseudo_dir is not None or self.partial is None:
            hard = self._hard(index, sample)
        else:
            hard = np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
        if self.partial is not None:
            if sample.label is None:
                raise DatasetError(
                    f"{sample.image_path}: split {self.reader.split!r} has no labels"
                )
            sets = self.partial.rows(sample.label, sample.label_path or sample.image_path)
        return self.layout.pack(hard, soft_ids=soft_ids, soft_probs=soft_probs, sets=sets)

    def _soft(self, index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``(k, H, W)`` class ids and probabilities of ``<key>_soft.npz``.

        Raises:
            DatasetError: unreadable file, other arrays or sizes, ids outside the taxonomy.
        """
        path = self._pseudo_path(index)
        ids, probs = read_soft_labels(path)
        if ids.shape[1:] != size:
            raise DatasetError(
                f"{path}: soft labels of size {ids.shape[2]}x{ids.shape[1]} differ from the "
                f"image's {size[1]}x{size[0]}"
            )
        bad = np.unique(ids[(ids >= self.taxonomy.num_classes) & (ids != IGNORE_INDEX)])
        if bad.size:
            raise DatasetError(
                f"{path}: class ids {bad[:10].tolist()} are not train ids of {self.taxonomy.name!r}"
            )
        return ids, probs.astype(np.float32)

    def _hard(self, index: int, sample: Any) -> np.ndarray:
        """``(H, W)`` uint8 train ids of one sample (its own labels or its pseudo-label)."""
        if self.pseudo_dir is None:
            if sample.label is None:
                raise DatasetError(
                    f"{sample.image_path}: split {self.reader.split!r} has no labels"
                )
            target = self.reader.taxonomy.to_train_ids(
                sample.label, unknown_as_ignore=self.reader.unknown_as_ignore
            )
        else:
            path = self._pseudo_path(index)
            target = read_label_png(path)
            if target.shape != sample.image.shape[:2]:
                raise DatasetError(
                    f"{path}: pseudo-label size {target.shape[1]}x{target.shape[0]} differs from "
                    f"image {sample.image_path} size {sample.image.shape[1]}x{sample.image.shape[0]}"
                )
            bad = np.unique(
                target[(target >= self.taxonomy.num_classes) & (target != IGNORE_INDEX)]
            )
            if bad.size:
                raise DatasetError(
                    f"{path}: values {bad[:10].tolist()} are not train ids of {self.taxonomy.name!r} "
                    f"(0..{self.taxonomy.num_classes - 1} or {IGNORE_INDEX})"
                )
            target = target.astype(np.uint8)
        return target

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, target = load_or_skip(
            self.reader, self.indices, position, self.load_pair, skip_log=self.skip_log
        )
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()
        target_t = torch.from_numpy(np.ascontiguousarray(target))
        return image_t, target_t if self.layout is not None else target_t.to(torch.int64)


def load_or_skip(
    reader: SegmentationDataset,
    indices: list[int],
    position: int,
    load: Callable[[int], T],
    *,
    skip_log: Path | None = None,
) -> T:
    """``load(position)``; under the reader's ``on_error="skip"``, a sample that fails with a
    :class:`~labelbridge.errors.DatasetError` is logged, recorded in ``reader.skipped``
    (and in ``skip_log``) and replaced by the next position, cyclically.

    Args:
        reader: the dataset reader (its ``on_error``, ``pairs`` and ``skipped``).
        indices: reader index of each position.
        position: the position asked for.
        load: reads one position.
        skip_log: JSON-lines file every skip is appended to, or ``None``.

    Raises:
        DatasetError: under ``on_error="raise"``, or when no position can be read.
    """
    for attempt in range(len(indices)):
        try:
            return load(position)
        except DatasetError as exc:
            if reader.on_error == "raise" or attempt == len(indices) - 1:
                raise
            bad_path = str(reader.pairs[indices[position]].image)
            reader.skipped.append(SkipRecord(bad_path, str(exc)))
            log.warning("skipping a bad sample: %s", exc)
            if skip_log is not None:
                append_skip_record(skip_log, bad_path, str(exc))
            position = (position + 1) % len(indices)
    raise DatasetError(f"{reader.root}: no samples to read")


def pad_collate(
    batch: list[tuple[torch.Tensor, torch.Tensor]], pad_values: tuple[float, ...] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(image, target)`` items, padding smaller ones at the bottom/right to the
    largest height and width (images with 0, targets with ``IGNORE_INDEX``, target stacks
    with each channel's ``pad_values``).

    Returns:
        ``(B, 3, H, W)`` uint8 images and ``(B, H, W)`` int64 targets, or ``(B, C, H, W)``
        float32 target stacks.
    """
    height = max(int(img.shape[-2]) for img, _ in batch)
    width = max(int(img.shape[-1]) for img, _ in batch)
    images = torch.zeros((len(batch), 3, height, width), dtype=torch.uint8)
    first = batch[0][1]
    if first.ndim == 3:
        if pad_values is None or len(pad_values) != first.shape[0]:
            raise ValueError(f"target stacks of {first.shape[0]} channels need their pad values")
        fill = torch.tensor(pad_values, dtype=first.dtype).view(1, -1, 1, 1)
        targets = fill.expand(len(batch), -1, height, width).clone()
    else:
        targets = torch.full((len(batch), height, width), IGNORE_INDEX, dtype=torch.int64)
    for i, (img, tgt) in enumerate(batch):
        h, w = img.shape[-2:]
        images[i, :, :h, :w] = img
        targets[i, ..., :h, :w] = tgt
    return images, targets


def append_skip_record(path: Path, file: str, problem: str) -> None:
    """Append one ``{"path", "problem"}`` JSON line (one small ``O_APPEND`` write, so
    lines from several loader processes do not interleave)."""
    line = (json.dumps({"path": file, "problem": problem}) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_skip_records(path: Path) -> list[dict[str, str]]:
    """Unique records of a skip log (first occurrence of each path), torn lines dropped."""
    if not path.is_file():
        return []
    seen: dict[str, dict[str, str]] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            continue
        seen.setdefault(rec.get("path", ""), rec)
    return list(seen.values())
