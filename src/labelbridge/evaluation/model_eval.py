"""Evaluate a model, or a folder of prediction PNGs, on a dataset reader.

Both paths read the ground truth through the reader (raw ids), convert it with
``dataset.taxonomy.to_train_ids`` and sum one :class:`ConfusionMatrix`. With an
ontology, predictions in ``ontology.source`` train ids are projected to
``ontology.extra`` train ids first (see :mod:`labelbridge.evaluation.projected`).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import torch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data.base import FilePair, SegmentationDataset, read_label_ids
from labelbridge.errors import CheckpointError, DatasetError, OntologyError
from labelbridge.evaluation.confusion import (
    FORBIDDEN,
    ConfusionMatrix,
    UnmappedValues,
    fold_histogram,
    joint_histogram,
    pair_counts,
)
from labelbridge.evaluation.metrics import SegmentationMetrics
from labelbridge.evaluation.projected import project_predictions
from labelbridge.models.base import SegmentationModel
from labelbridge.models.inference import image_to_tensor, predict_logits, predict_probabilities
from labelbridge.models.tta import TTAPredictor
from labelbridge.progress import Progress
from labelbridge.taxonomy import Ontology, Taxonomy
from labelbridge.threads import default_workers, ordered_map

logger = logging.getLogger(__name__)


def _check_taxonomies(
    pred_taxonomy: Taxonomy, dataset: SegmentationDataset, ontology: Ontology | None
) -> Taxonomy:
    """The evaluated taxonomy; raises when the taxonomies do not fit together."""
    if ontology is None:
        if not pred_taxonomy.same_train_space(dataset.taxonomy):
            raise OntologyError(
                f"predictions are in taxonomy {pred_taxonomy.name!r} but dataset {dataset.name!r} "
                f"is labelled in {dataset.taxonomy.name!r}; give an ontology mapping "
                f"({dataset.taxonomy.name}_to_{pred_taxonomy.name}) to evaluate through its projection"
            )
        return dataset.taxonomy
    if not pred_taxonomy.same_train_space(ontology.source):
        raise OntologyError(
            f"{ontology.origin}: the mapping's source taxonomy is {ontology.source.name!r} but the "
            f"predictions are in {pred_taxonomy.name!r}"
        )
    if not dataset.taxonomy.same_train_space(ontology.extra):
        raise OntologyError(
            f"{ontology.origin}: the mapping's extra taxonomy is {ontology.extra.name!r} but dataset "
            f"{dataset.name!r} is labelled in {dataset.taxonomy.name!r}"
        )
    return ontology.extra


def _selected_indices(dataset: SegmentationDataset, limit: int | None) -> list[int]:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return list(range(count))


def _ground_truth(
    dataset: SegmentationDataset, pair: FilePair, raw: np.ndarray | None = None
) -> np.ndarray:
    """``(H, W)`` uint8 train ids of the evaluated taxonomy for one pair (``raw``: its
    label's raw ids when already read)."""
    if pair.label is None:
        raise DatasetError(
            f"{pair.image}: split {dataset.split!r} of {dataset.name!r} has no labels to evaluate"
        )
    if raw is None:
        raw = dataset.read_label(pair.label)
    try:
        return dataset.taxonomy.to_train_ids(raw, unknown_as_ignore=dataset.unknown_as_ignore)
    except ValueError as exc:
        raise DatasetError(f"{pair.label}: {exc}") from None


def _target_fold_table(dataset: SegmentationDataset) -> np.ndarray | None:
    """``(256,)`` fold table (:func:`~labelbridge.evaluation.confusion.fold_histogram`)
    of the reader's raw label ids, when its labels are plain id PNGs read by the base
    reader (``None`` otherwise: colour labels, readers that decode their own way)."""
    if dataset.taxonomy.label_format != "id":
        return None
    if type(dataset).read_label is not SegmentationDataset.read_label:
        return None
    table = dataset.taxonomy.lut[:256].astype(np.int64)
    if dataset.unknown_as_ignore:
        table[table == FORBIDDEN] = IGNORE_INDEX
    return table


def _pred_fold_table(
    pred_taxonomy: Taxonomy, pred_ids: str, ontology: Ontology | None, k: int
) -> np.ndarray:
    """``(256,)`` fold table of prediction values: train ids of the evaluated taxonomy
    (through ``ontology``'s projection when given), ``k`` for a miss, ``FORBIDDEN`` for
    label ids not in ``pred_taxonomy``."""
    k_pred = pred_taxonomy.num_classes
    values = np.arange(256)
    train = pred_taxonomy.lut[:256].astype(np.int64) if pred_ids == "label" else values
    valid = (train >= 0) & (train < k_pred)
    mapped = train[valid] if ontology is None else ontology.projection[train[valid]]
    table = np.full(256, k, dtype=np.int64)  # a miss, unless a class below
    table[valid] = np.where(mapped == IGNORE_INDEX, k, mapped)
    table[train == FORBIDDEN] = FORBIDDEN
    return table


#: How prediction PNGs store classes: train ids of the prediction taxonomy, or its raw
#: label ids (the Cityscapes benchmark's submission format, ``*_labelIds``).
PRED_ID_KINDS = ("train", "label")


def evaluate_prediction_folder(
    pred_dir: str | Path,
    dataset: SegmentationDataset,
    *,
    pred_taxonomy: Taxonomy,
    ontology: Ontology | None = None,
    limit: int | None = None,
    progress: bool = True,
    pred_ids: str = "train",
    workers: int | None = None,
) -> SegmentationMetrics:
    """Score a folder of prediction PNGs against a dataset's ground truth.

    Reading, converting and counting run in ``workers`` threads (PNG decoding and numpy
    release the GIL), one pair per task; the counts are summed in the caller's thread,
    so the result does not depend on the number of workers.

    Args:
        pred_dir: folder holding ``<pred_dir>/<sample key>.png`` for every sample, each an
            ``(H, W)`` id PNG at the label's size: train ids of ``pred_taxonomy``
            (``IGNORE_INDEX`` or other out-of-range values count as misses), or with
            ``pred_ids="label"`` its raw label ids (ids of ignored classes count as misses;
            ids not in the taxonomy are an error naming the file).
        dataset: reader of the evaluated split (raw ids of ``dataset.taxonomy``).
        pred_taxonomy: taxonomy of the predictions; must be ``dataset.taxonomy`` unless
            ``ontology`` is given, then ``ontology.source``.
        ontology: project predictions into ``ontology.extra`` (the dataset's taxonomy).
        limit: evaluate only the first ``limit`` samples.
        progress: show a progress bar on stderr.
        pred_ids: ``"train"`` or ``"label"`` (see ``pred_dir``).
        workers: threads (``0``: all in the caller's thread; default: the CPUs, at most 4).

    Returns:
        Metrics over the dataset taxonomy's train classes.

    Raises:
        DatasetError: a prediction file is missing (named), unreadable, or of another
            size than its label; a label file is bad. The first bad sample in dataset
            order is reported, whatever the number of workers.
        OntologyError: the taxonomies do not fit together.
    """
    if pred_ids not in PRED_ID_KINDS:
        raise ValueError(f"pred_ids must be one of {PRED_ID_KINDS}, got {pred_ids!r}")
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DatasetError(f"{pred_dir}: prediction folder not found")
    evaluated = _check_taxonomies(pred_taxonomy, dataset, ontology)
    cm = ConfusionMatrix(evaluated.num_classes, class_names=evaluated.train_names)
    k_pred, k = pred_taxonomy.num_classes, evaluated.num_classes
    # plain uint8 id PNGs on both sides: one joint histogram of raw values per pair,
    # folded through lookup tables (conversion, projection and checks in one pass)
    target_table = _target_fold_table(dataset)
    pred_table = _pred_fold_table(pred_taxonomy, pred_ids, ontology, k)

    def outside_warning(pred_path: Path, values: np.ndarray) -> str | None:
        outside = values[(values >= k_pred) & (values != IGNORE_INDEX)]
        if not outside.size:
            return None
        return (
            f"{pred_path}: values {outside[:10].tolist()} are not train ids of "
            f"{pred_taxonomy.name!r}; they count as misses"
        )

    def check_size(pred: np.ndarray, target: np.ndarray, pred_path: Path, pair: FilePair) -> None:
        if pred.shape != target.shape:
            raise DatasetError(
                f"{pred_path}: prediction size {pred.shape[1]}x{pred.shape[0]} differs from label "
                f"{pair.label} size {target.shape[1]}x{target.shape[0]}"
            )

    def score(i: int) -> tuple[np.ndarray, str | None]:
        pair = dataset.pairs[i]
        pred_path = pred_dir / f"{pair.key}.png"
        if not pred_path.is_file():
            raise DatasetError(f"{pred_path}: prediction file missing for sample {pair.key!r}")
        pred = read_label_ids(pred_path)
        raw = None
        if target_table is not None and pair.label is not None:
            raw = read_label_ids(pair.label)
            if raw.dtype == np.uint8 and pred.dtype == np.uint8:
                check_size(pred, raw, pred_path, pair)
                return fold_pair(pred, raw, pred_path, pair, target_table)
        target = _ground_truth(dataset, pair, raw)
        check_size(pred, target, pred_path, pair)
        warning = None
        if pred_ids == "label":
            try:
                pred = pred_taxonomy.to_train_ids(pred)
            except ValueError as exc:
                raise DatasetError(f"{pred_path}: {exc}") from None
        else:
            warning = outside_warning(pred_path, np.unique(pred))
        if ontology is not None:
            pred = project_predictions(pred, ontology)
        return pair_counts(pred, target, k), warning

    def fold_pair(
        pred_raw: np.ndarray,
        target_raw: np.ndarray,
        pred_path: Path,
        pair: FilePair,
        target_table: np.ndarray,
    ) -> tuple[np.ndarray, str | None]:
        hist = joint_histogram(pred_raw, target_raw)
        try:
            counts = fold_histogram(hist, target_table, pred_table, k)
        except UnmappedValues as exc:
            if exc.side == "target":
                error = dataset.taxonomy.unknown_ids_error(exc.values)
                raise DatasetError(f"{pair.label}: {error}") from None
            raise DatasetError(
                f"{pred_path}: {pred_taxonomy.unknown_ids_error(exc.values)}"
            ) from None
        warning = None
        if pred_ids == "train":
            warning = outside_warning(pred_path, np.flatnonzero(hist.any(axis=0)))
        return counts, warning

    indices = _selected_indices(dataset, limit)
    scored = ordered_map(score, indices, workers=default_workers() if workers is None else workers)
    warned = False
    for counts, warning in Progress(total=len(indices), desc="evaluate", enabled=progress).track(
        scored
    ):
        cm.add_counts(counts)
        if warning is not None and not warned:
            logger.warning("%s", warning)
            warned = True
    return cm.compute()


def _parse_size(input_size: tuple[int, int] | None) -> tuple[int, int] | None:
    if input_size is None:
        return None
    w, h = (int(v) for v in input_size)
    if w < 1 or h < 1:
        raise ValueError(f"input_size must be positive (W, H), got {input_size}")
    return w, h


def _predict_same_size(
    model: SegmentationModel,
    images: list[np.ndarray],
    *,
    input_size: tuple[int, int] | None,
    num_classes: int,
    tta: TTAPredictor | None = None,
) -> torch.Tensor:
    """``(B, H, W)`` int64 argmax train ids for images of one native size ``(H, W)``."""
    batch = torch.cat([image_to_tensor(im) for im in images])
    if tta is not None:
        return predict_probabilities(model, batch, input_size=input_size, tta=tta).argmax(dim=1)
    logits = predict_logits(model, batch, input_size=input_size)
    if logits.ndim != 4 or logits.shape[1] != num_classes:
        raise CheckpointError(
            f"model returned logits of shape {tuple(logits.shape)}; expected (B, {num_classes}, H, W) "
            f"for the {num_classes} classes of its taxonomy"
        )
    return logits.argmax(dim=1)


def evaluate_model(
    model: SegmentationModel,
    dataset: SegmentationDataset,
    *,
    model_taxonomy: Taxonomy,
    ontology: Ontology | None = None,
    input_size: tuple[int, int] | None = None,
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    progress: bool = True,
    tta: TTAPredictor | None = None,
) -> SegmentationMetrics:
    """Run a model over a reader and score its predictions.

    Each image ``(H, W, 3)`` uint8 becomes ``(1, 3, H, W)`` float RGB in ``[0, 1]``;
    :func:`labelbridge.models.inference.predict_logits` resizes it to ``input_size``
    when given and the ``(B, C, h, w)`` logits back to the native ``(H, W)`` (bilinear)
    before the argmax. The confusion matrix stays on ``device``.

    Args:
        model: a :class:`~labelbridge.models.SegmentationModel` with
            ``model_taxonomy.num_classes`` outputs; it is put in eval mode on ``device``.
        dataset: reader of the evaluated split (raw ids of ``dataset.taxonomy``).
        model_taxonomy: the model's taxonomy (its train ids are the output channels).
        ontology: project predictions from ``ontology.source`` (= ``model_taxonomy``) to
            ``ontology.extra`` (= ``dataset.taxonomy``).
        input_size: ``(W, H)`` the model sees, or ``None`` for the native size.
        batch_size: images read per step; those of one native size share a forward pass.
        device: torch device for the model and the counts.
        limit: evaluate only the first ``limit`` (readable) samples.
        progress: show a progress bar on stderr.
        tta: predict with test-time augmentation (the pseudo-labeller's: probabilities
            averaged over its scales and flip, at ``input_size``); ``tta.model`` must be
            ``model``.

    Returns:
        Metrics over the dataset taxonomy's train classes.

    Raises:
        OntologyError: the taxonomies do not fit together.
        CheckpointError: the model's output channels differ from the taxonomy's classes.
        DatasetError: a bad dataset file (unless the reader skips bad samples).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    size = _parse_size(input_size)
    evaluated = _check_taxonomies(model_taxonomy, dataset, ontology)
    device = torch.device(device)
    model = model.to(device).eval()
    cm = ConfusionMatrix(evaluated.num_classes, class_names=evaluated.train_names, device=device)
    indices = _selected_indices(dataset, limit)

    def flush(images: list[np.ndarray], targets: list[np.ndarray]) -> None:
        by_size: dict[tuple[int, ...], list[int]] = {}
        for j, image in enumerate(images):
            by_size.setdefault(image.shape, []).append(j)
        for group in by_size.values():
            preds = _predict_same_size(
                model,
                [images[j] for j in group],
                input_size=size,
                num_classes=model_taxonomy.num_classes,
                tta=tta,
            )
            if ontology is not None:
                preds = project_predictions(preds, ontology)
            target = torch.from_numpy(np.stack([targets[j] for j in group])).to(preds.device)
            cm.update(preds, target)

    images: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    bar = Progress(total=len(indices), desc="evaluate", enabled=progress)
    try:
        # iter_samples raises on bad files, or records and drops them under on_error="skip"
        for sample in itertools.islice(dataset.iter_samples(), len(indices)):
            if sample.label is None:
                raise DatasetError(
                    f"{sample.image_path}: split {dataset.split!r} of {dataset.name!r} has no labels to evaluate"
                )
            images.append(sample.image)
            # the reader has already refused (or, when asked to, replaced) unknown ids
            targets.append(
                dataset.taxonomy.to_train_ids(
                    sample.label, unknown_as_ignore=dataset.unknown_as_ignore
                )
            )
            if len(images) == batch_size:
                flush(images, targets)
                bar.update(len(images))
                images, targets = [], []
        flush(images, targets)
        bar.update(len(images))
    finally:
        bar.close()
    return cm.compute()
