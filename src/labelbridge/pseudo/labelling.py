"""Labelling one batch of images and writing each image's files.

:func:`label_batch` runs the teacher with TTA on a batch of equal-size images, applies
the priors and gathers per-image statistics (CPU arrays, :class:`ImageResult`);
:func:`write_result` writes one image's label PNG (uint8 mode-L source train ids,
``255`` = ignore), its optional confidence PNG and soft-label NPZ and preview panel,
and returns its manifest record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data import Sample
from labelbridge.data.pseudo_folder import (
    CONF_SUFFIX,
    SOFT_ARRAYS,
    SOFT_SUFFIX,
    label_relpath,
    preview_relpath,
)
from labelbridge.files import encode_label_png, encode_npz, write_bytes_atomic
from labelbridge.models.tta import TTAPredictor
from labelbridge.pseudo.report import IGNORE_NAME
from labelbridge.taxonomy import Ontology, Taxonomy
from labelbridge.taxonomy.priors import apply_priors, top_k_soft

#: Allowed-set and void-set tensors of the priors (``None``: Naive Student, no priors).
PriorTensors = tuple[torch.Tensor, torch.Tensor | None] | None


def evaluation_lookups(
    ontology: Ontology, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tables for the agreement with the extra ground truth.

    Returns:
        ``projection`` ``(256,)`` int64: source train id (or ``IGNORE_INDEX``) -> extra
        train id or ``IGNORE_INDEX``; ``gt_lut`` ``(E,)`` int64: extra raw id -> extra train
        id, ``IGNORE_INDEX`` for ignored or unknown ids.
    """
    projection = torch.full((IGNORE_INDEX + 1,), IGNORE_INDEX, dtype=torch.int64)
    projection[: ontology.source.num_classes] = torch.from_numpy(
        ontology.projection.astype(np.int64)
    )
    lut = ontology.extra.lut.astype(np.int64)
    lut[lut < 0] = IGNORE_INDEX
    return projection.to(device), torch.from_numpy(lut).to(device)


def images_to_tensor(samples: list[Sample], device: torch.device) -> torch.Tensor:
    """``(B, 3, H, W)`` float in ``[0, 1]`` on ``device`` from the samples' uint8 images."""
    batch = torch.from_numpy(np.stack([s.image for s in samples]))  # (B, H, W, 3) uint8
    return batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)


def labels_to_tensor(samples: list[Sample], device: torch.device) -> torch.Tensor:
    """``(B, H, W)`` int64 raw extra ids on ``device`` from the samples' labels."""
    batch = torch.from_numpy(np.stack([s.label for s in samples]).astype(np.int64, copy=False))
    return batch.to(device, non_blocking=True)


@dataclass
class ImageResult:
    """Everything the writer needs for one image (CPU arrays)."""

    position: int
    sample: Sample
    labels: np.ndarray  # (H, W) uint8
    pixels: np.ndarray  # (K+1,) int64, last = ignore
    changed: np.ndarray  # (K+1,) int64
    conf_sum: np.ndarray  # (K+1,) float64
    confidence: np.ndarray | None = None  # (H, W) uint8
    soft_ids: np.ndarray | None = None  # (k, H, W) uint8
    soft_probs: np.ndarray | None = None  # (k, H, W) float16
    teacher: np.ndarray | None = None  # (H, W) uint8, for previews
    agreement: tuple[int, int, int] | None = None  # labelled, pseudo agrees, teacher agrees
    fallbacks: list[dict[str, Any]] = field(default_factory=list)


def label_batch(
    predictor: TTAPredictor,
    batch: list[tuple[int, Sample]],
    *,
    device: torch.device,
    priors_t: PriorTensors,
    preview: set[int],
    lookups: tuple[torch.Tensor, torch.Tensor],
    confidence: bool,
    soft_top_k: int,
) -> list[ImageResult]:
    """Pseudo-label a batch of ``(position, sample)`` of equal image size.

    Args:
        predictor: the teacher with its TTA (``predictor.num_classes`` source classes).
        batch: dataset positions and their samples.
        device: where the model runs.
        priors_t: the priors' tensors (:data:`PriorTensors`), ``None`` for no priors.
        preview: positions that get a preview (their teacher prediction is kept).
        lookups: :func:`evaluation_lookups`, for the agreement with the extra labels.
        confidence: keep the ``(H, W)`` uint8 confidence; ``soft_top_k``: keep this many
            classes of soft labels (``0``: none).

    Raises:
        NonFiniteScoresError: the teacher produced NaN/inf.
    """
    samples = [s for _, s in batch]
    images = images_to_tensor(samples, device)
    has_gt = all(s.label is not None for s in samples)
    gt = labels_to_tensor(samples, device) if has_gt else None
    n_events = len(predictor.events)
    probs = predictor.predict(images)
    what = f"image {samples[0].key}" + (f" (+{len(samples) - 1})" if len(samples) > 1 else "")
    allowed_t, void_t = priors_t if priors_t is not None else (None, None)
    out = apply_priors(
        probs, gt if allowed_t is not None else None, allowed_t, void_t=void_t, what=what
    )
    events = [e.to_dict() for e in predictor.events[n_events:]]
    k = predictor.num_classes
    b = len(samples)
    # per-image class statistics, vectorised: class index K stands for ignore
    idx = torch.where(out.labels == IGNORE_INDEX, torch.full_like(out.labels, k), out.labels)
    offset = (idx + torch.arange(b, device=idx.device).view(b, 1, 1) * (k + 1)).flatten()
    pixels = torch.bincount(offset, minlength=b * (k + 1)).view(b, k + 1)
    changed = torch.bincount(offset[out.changed.flatten()], minlength=b * (k + 1)).view(b, k + 1)
    conf_sum = torch.bincount(
        offset, weights=out.confidence.flatten().double(), minlength=b * (k + 1)
    ).view(b, k + 1)
    labels_np = out.labels.to(torch.uint8).cpu().numpy()
    conf_np = (
        (out.confidence * 255.0).round_().to(torch.uint8).cpu().numpy() if confidence else None
    )
    soft_ids = soft_probs = None
    if soft_top_k:
        ids, sp = top_k_soft(out.masked, out.labels, soft_top_k)
        soft_ids, soft_probs = ids.cpu().numpy(), sp.cpu().numpy()
    teacher_np = None
    if any(p in preview for p, _ in batch):
        teacher_np = out.teacher.to(torch.uint8).cpu().numpy()
    pixels_np, changed_np, conf_np_sum = (
        pixels.cpu().numpy(),
        changed.cpu().numpy(),
        conf_sum.cpu().numpy(),
    )
    agreement = None
    if gt is not None:
        # agreement with the extra ground truth, projected to the extra taxonomy
        projection, gt_lut = lookups
        gt_train = gt_lut[gt.clamp(0, gt_lut.numel() - 1)]
        labelled = gt_train != IGNORE_INDEX
        agree_p = (projection[out.labels] == gt_train) & labelled
        agree_t = (projection[out.teacher] == gt_train) & labelled
        agreement = (
            torch.stack(
                [
                    labelled.flatten(1).sum(1),
                    agree_p.flatten(1).sum(1),
                    agree_t.flatten(1).sum(1),
                ],
                1,
            )
            .cpu()
            .numpy()
        )
    results = []
    for i, (pos, sample) in enumerate(batch):
        results.append(
            ImageResult(
                position=pos,
                sample=sample,
                labels=labels_np[i],
                pixels=pixels_np[i],
                changed=changed_np[i],
                conf_sum=conf_np_sum[i],
                confidence=None if conf_np is None else conf_np[i],
                soft_ids=None if soft_ids is None else soft_ids[i],
                soft_probs=None if soft_probs is None else soft_probs[i],
                teacher=teacher_np[i] if teacher_np is not None and pos in preview else None,
                agreement=None if agreement is None else tuple(int(v) for v in agreement[i]),
                fallbacks=events,
            )
        )
    return results


def write_result(
    folder: Path,
    res: ImageResult,
    *,
    taxonomy: Taxonomy,
    ontology: Ontology,
    dataset: str,
    priors: bool,
) -> dict[str, Any]:
    """Write one image's files into ``folder`` and return its manifest record (paths,
    checksums, class statistics in ``taxonomy``'s train names plus ``ignore``).

    Raises:
        OutputWriteError: a write failed (disk full).
    """
    key = res.sample.key
    names = [*taxonomy.train_names, IGNORE_NAME]
    rel = label_relpath(key)
    digests = {rel: write_bytes_atomic(folder / rel, encode_label_png(res.labels))}
    if res.confidence is not None:
        crel = label_relpath(key, CONF_SUFFIX)
        digests[crel] = write_bytes_atomic(folder / crel, encode_label_png(res.confidence))
    if res.soft_ids is not None and res.soft_probs is not None:
        srel = label_relpath(key, SOFT_SUFFIX)
        digests[srel] = write_bytes_atomic(
            folder / srel,
            encode_npz(dict(zip(SOFT_ARRAYS, (res.soft_ids, res.soft_probs), strict=True))),
        )
    if res.teacher is not None:
        from labelbridge.viz.panels import render_panel

        png = render_panel(
            res.sample.image,
            res.sample.label,
            res.teacher,
            res.labels,
            source=taxonomy,
            extra=ontology.extra,
            title=f"{dataset}: {key}",
            priors=priors,
        )
        write_bytes_atomic(folder / preview_relpath(key), png)
    record: dict[str, Any] = {
        "key": key,
        "input": str(res.sample.image_path),
        "output": rel,
        "sha256": digests,
        "height": int(res.labels.shape[0]),
        "width": int(res.labels.shape[1]),
        "pixels": {names[c]: int(n) for c, n in enumerate(res.pixels) if n},
        "changed": {names[c]: int(n) for c, n in enumerate(res.changed) if n},
        "changed_by_priors": int(res.changed.sum()),
        "confidence_sum": {
            names[c]: round(float(v), 4) for c, v in enumerate(res.conf_sum) if res.pixels[c]
        },
    }
    if res.agreement is not None:
        labelled, agree_pseudo, agree_teacher = res.agreement
        record["agreement"] = {
            "labelled": labelled,
            "pseudo": agree_pseudo,
            "teacher": agree_teacher,
        }
    if res.fallbacks:
        record["fallbacks"] = res.fallbacks
    return record
