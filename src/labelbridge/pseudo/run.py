"""The pseudo-labelling run: teacher + TTA + priors over each configured extra dataset.

Per dataset entry the run writes, under ``<output>/<name>/``:

* ``<key>.png``: uint8 mode-L source train ids (``255`` = ignore) at the image's
  native resolution, mirroring the dataset's relative paths;
* optionally ``<key>_conf.png`` (max masked probability x 255) and ``<key>_soft.npz``
  (``ids`` ``(k, H, W)`` uint8 and ``probs`` ``(k, H, W)`` float16, renormalised over
  the allowed set);
* ``manifest.jsonl`` (or shard parts), ``pseudo_labels.yaml`` (taxonomy and
  settings, read by training), ``report.json`` / ``report.md``, ``previews/*.png``.

Work is split so that the main thread only runs the model: a thread pool decodes the
next images while the model runs, another encodes and writes finished ones; manifest
lines are appended in dataset order once an image's files are in place. Re-running
skips images whose manifest record and files agree; results are deterministic (fixed
order, fixed encodings, deterministic cuDNN; fix ``threads`` for identical bytes across
machines). A folder made with other settings (teacher checksum, mapping, TTA, priors,
outputs) is refused instead of being mixed into.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from labelbridge.config.pseudo import DatasetEntry, PseudoLabelConfig, TeacherConfig
from labelbridge.constants import IGNORE_INDEX
from labelbridge.data import Sample, SegmentationDataset, create_dataset
from labelbridge.data.pseudo_folder import (
    CONF_SUFFIX,
    INFO_FILE,
    SOFT_SUFFIX,
    label_relpath,
    preview_relpath,
)
from labelbridge.errors import CheckpointError, ConfigError, DatasetError
from labelbridge.files import (
    encode_label_png,
    encode_npz,
    remove_stale_temp_files,
    sha256_file,
    write_bytes_atomic,
)
from labelbridge.progress import Progress
from labelbridge.pseudo.distributed import Shard, barrier, detect_shard, local_cuda_device
from labelbridge.pseudo.manifest import (
    ManifestWriter,
    manifest_name,
    merge_manifests,
    read_manifests,
    verify_outputs,
)
from labelbridge.pseudo.report import IGNORE_NAME, build_report, write_report
from labelbridge.pseudo.tta import TTAPredictor
from labelbridge.taxonomy import Ontology, Taxonomy, load_ontology
from labelbridge.taxonomy.priors import allowed_tensor, apply_priors, top_k_soft, void_tensor

log = logging.getLogger(__name__)

#: Keys of ``pseudo_labels.yaml`` that must match to resume into an existing folder.
FINGERPRINT_KEYS = ("taxonomy_def", "ontology", "dataset", "teacher", "tta", "priors", "outputs")


# ---------------------------------------------------------------------------- teacher
@dataclass
class Teacher:
    """A loaded teacher.

    Attributes:
        model: the network in eval mode on its device (model contract of
            :class:`~labelbridge.models.SegmentationModel`).
        taxonomy: taxonomy of its outputs (``model`` predicts ``taxonomy.num_classes``).
        description: provenance recorded in ``pseudo_labels.yaml``.
    """

    model: nn.Module
    taxonomy: Taxonomy
    description: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA (this process's local rank) when available, else CPU.

    Raises:
        ConfigError: ``cuda`` asked for but not available.
    """
    if name == "auto":
        return torch.device(local_cuda_device() if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r}: CUDA is not available on this machine; use device: cpu or auto"
            )
        return torch.device(local_cuda_device() if name == "cuda" else name)
    return torch.device(name)


def load_teacher(cfg: TeacherConfig, device: torch.device) -> Teacher:
    """Load the configured teacher onto ``device`` in eval mode.

    Raises:
        CheckpointError: unreadable checkpoint or weights (from the model zoo).
    """
    from labelbridge.models import load_model

    loaded = load_model(
        checkpoint=cfg.checkpoint,
        spec=cfg.model,
        weights=cfg.weights,
        taxonomy=cfg.taxonomy,
        what="teacher",
    )
    model, taxonomy = loaded.model, loaded.taxonomy
    if cfg.checkpoint is not None:
        path = Path(cfg.checkpoint)
        description = {
            "checkpoint": str(path.resolve()),
            "checkpoint_sha256": sha256_file(path),
            "model": loaded.spec,
        }
    else:
        description = {"model": str(cfg.model), "taxonomy": taxonomy.name}
        if cfg.weights:
            weights = Path(cfg.weights)
            description.update(weights=str(weights.resolve()), weights_sha256=sha256_file(weights))
    model = model.to(device).eval()
    return Teacher(model=model, taxonomy=taxonomy, description=description)


def check_teacher(teacher: Teacher, ontology: Ontology) -> None:
    """The teacher must predict exactly the mapping's source taxonomy.

    Raises:
        CheckpointError: different taxonomy (name or class list) or output channels.
    """
    src, tt = ontology.source, teacher.taxonomy
    if not tt.same_train_space(src):
        raise CheckpointError(
            f"{ontology.origin}: the mapping's source taxonomy {src.name!r} ({src.num_classes} classes) "
            f"differs from the teacher's taxonomy {tt.name!r} ({tt.num_classes} classes); the teacher "
            f"must predict the mapping's source classes"
        )
    channels = getattr(teacher.model, "num_classes", None)
    if channels is not None and int(channels) != src.num_classes:
        raise CheckpointError(
            f"the teacher has {channels} output channels but taxonomy {src.name!r} has "
            f"{src.num_classes} classes"
        )


# ---------------------------------------------------------------------------- helpers
def preview_positions(total: int, count: int) -> list[int]:
    """``count`` evenly spaced positions in ``0..total-1`` (the images that get previews)."""
    if count <= 0 or total <= 0:
        return []
    if count >= total:
        return list(range(total))
    return sorted({int(round(x)) for x in np.linspace(0, total - 1, count)})


def _fingerprint(settings: dict[str, Any], key: str) -> Any:
    """The part of a settings entry that must match to resume (file locations may move;
    the teacher is identified by its checksum)."""
    value = settings.get(key)
    if key == "ontology" and isinstance(value, dict):
        mapping = value.get("mapping")
        if isinstance(mapping, dict):  # notes are commentary, not meaning
            return {k: v for k, v in mapping.items() if k != "notes"}
        return mapping
    if key == "teacher" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in ("checkpoint", "weights")}
    return value


def _listing_skip(dataset: SegmentationDataset, record: Any) -> dict[str, str]:
    """A file the reader dropped while listing (``on_error: skip``) as a report entry."""
    path = Path(str(record.path))
    try:
        key = path.relative_to(dataset.root).with_suffix("").as_posix()
    except ValueError:
        key = path.with_suffix("").as_posix()
    return {"key": key, "input": str(path), "error": str(record.problem)}


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


def _images_to_tensor(samples: list[Sample], device: torch.device) -> torch.Tensor:
    batch = torch.from_numpy(np.stack([s.image for s in samples]))  # (B, H, W, 3) uint8
    return batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)


def _labels_to_tensor(samples: list[Sample], device: torch.device) -> torch.Tensor:
    batch = torch.from_numpy(np.stack([s.label for s in samples]).astype(np.int64, copy=False))
    return batch.to(device, non_blocking=True)


@dataclass
class _Result:
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


@dataclass
class DatasetSummary:
    """Outcome of one dataset entry in this process.

    Attributes:
        name: entry name; ``folder``: its output folder.
        total: images of the entry (after ``limit``); ``mine``: those of this shard.
        processed: images labelled now; ``resumed``: skipped as already done;
        failed: bad input files skipped (``on_error: skip``).
        seconds: wall time; ``report``: the report dict (union of all shards so far).
    """

    name: str
    folder: Path
    total: int
    mine: int
    processed: int
    resumed: int
    failed: int
    seconds: float
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        rep = self.report
        return {
            "name": self.name,
            "folder": str(self.folder),
            "total": self.total,
            "this_shard": self.mine,
            "processed": self.processed,
            "resumed": self.resumed,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.processed / self.seconds, 3)
            if self.seconds > 0
            else None,
            "complete": rep.get("complete"),
            "changed_by_priors_share": rep.get("changed_by_priors", {}).get("share_of_labelled"),
            "ignore_share": rep.get("pixels", {}).get("ignore_share"),
            "mean_confidence": rep.get("mean_confidence"),
            "agreement_pseudo": rep.get("agreement_with_extra_gt", {}).get("pseudo_labels"),
            "agreement_teacher": rep.get("agreement_with_extra_gt", {}).get("teacher"),
            "fallbacks": rep.get("fallbacks", []),
        }


# ---------------------------------------------------------------------------- the labeller
class PseudoLabeler:
    """Runs a teacher with TTA and priors over datasets, writing label folders.

    Args:
        teacher: the loaded teacher (see :func:`load_teacher`).
        tta_scales: TTA scales; ``flip``: flipped passes; ``batch_scales``: flip batching.
        priors: mask with the ontology (``False``: Naive Student).
        batch_size: images of equal size per forward pass.
        num_workers: decode and encode/write threads each (``0``: all in the main thread).
        confidence: write ``<key>_conf.png``; ``soft_top_k``: write ``<key>_soft.npz`` with
            this many classes (``0``: none); ``previews``: panels per dataset.
        progress: progress on stderr (:class:`labelbridge.progress.Progress`).
    """

    def __init__(
        self,
        *,
        teacher: Teacher,
        tta_scales: list[float],
        flip: bool = True,
        batch_scales: bool = True,
        priors: bool = True,
        batch_size: int = 1,
        num_workers: int = 2,
        confidence: bool = False,
        soft_top_k: int = 0,
        previews: int = 4,
        progress: bool = False,
    ) -> None:
        self.teacher = teacher
        self.device = next(iter(teacher.model.parameters()), torch.empty(0)).device
        self.taxonomy = teacher.taxonomy
        self.predictor = TTAPredictor(
            teacher.model,
            num_classes=teacher.taxonomy.num_classes,
            scales=tta_scales,
            flip=flip,
            batch_scales=batch_scales,
        )
        self.priors = priors
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.confidence = confidence
        self.soft_top_k = soft_top_k
        self.previews = previews
        self.progress = progress

    @classmethod
    def from_config(
        cls, cfg: PseudoLabelConfig, teacher: Teacher, *, progress: bool = False
    ) -> PseudoLabeler:
        """Build from a :class:`~labelbridge.config.pseudo.PseudoLabelConfig`."""
        return cls(
            teacher=teacher,
            tta_scales=list(cfg.tta.scales),
            flip=cfg.tta.flip,
            batch_scales=cfg.tta.batch_scales,
            priors=cfg.priors,
            batch_size=cfg.batch_size,
            num_workers=cfg.num_workers,
            confidence=cfg.outputs.confidence,
            soft_top_k=cfg.outputs.soft_labels.top_k if cfg.outputs.soft_labels.enabled else 0,
            previews=cfg.outputs.previews,
            progress=progress,
        )

    # ------------------------------------------------------------------ settings file
    def settings(self, entry: DatasetEntry, ontology: Ontology) -> dict[str, Any]:
        """Contents of ``pseudo_labels.yaml`` for an entry."""
        return {
            "taxonomy": self.taxonomy.name,
            "taxonomy_def": self.taxonomy.to_dict(),
            "label_format": "PNG mode L, source train ids 0..K-1, 255 = ignore",
            "ontology": {"origin": ontology.origin, "mapping": ontology.to_dict()},
            "dataset": {
                "reader": entry.reader,
                "split": entry.split,
                "extra_taxonomy": ontology.extra.name,
            },
            "teacher": self.teacher.description,
            "tta": {"flip": self.predictor.flip, "scales": list(self.predictor.scales)},
            "priors": self.priors,
            "outputs": {"confidence": self.confidence, "soft_top_k": self.soft_top_k},
        }

    def _prepare_folder(self, folder: Path, settings: dict[str, Any]) -> None:
        info = folder / INFO_FILE
        if info.is_file():
            try:
                old = yaml.safe_load(info.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(
                    f"{info}: unreadable ({exc}); delete it or choose another output"
                ) from None
            if not isinstance(old, dict):
                old = {}
            diffs = [
                k for k in FINGERPRINT_KEYS if _fingerprint(old, k) != _fingerprint(settings, k)
            ]
            if diffs:
                raise ConfigError(
                    f"{info}: this folder holds pseudo-labels made with other settings "
                    f"(differing: {', '.join(diffs)}); choose another output folder or delete it"
                )
        text = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True)
        write_bytes_atomic(info, text.encode("utf-8"))

    # ------------------------------------------------------------------ computing
    def _compute(
        self,
        batch: list[tuple[int, Sample]],
        priors_t: tuple[torch.Tensor, torch.Tensor | None] | None,
        preview: set[int],
        lookups: tuple[torch.Tensor, torch.Tensor],
    ) -> list[_Result]:
        samples = [s for _, s in batch]
        images = _images_to_tensor(samples, self.device)
        has_gt = all(s.label is not None for s in samples)
        gt = _labels_to_tensor(samples, self.device) if has_gt else None
        n_events = len(self.predictor.events)
        probs = self.predictor.predict(images)
        what = f"image {samples[0].key}" + (f" (+{len(samples) - 1})" if len(samples) > 1 else "")
        allowed_t, void_t = priors_t if priors_t is not None else (None, None)
        out = apply_priors(
            probs, gt if allowed_t is not None else None, allowed_t, void_t=void_t, what=what
        )
        events = [e.to_dict() for e in self.predictor.events[n_events:]]
        k = self.taxonomy.num_classes
        b = len(samples)
        # per-image class statistics, vectorised: class index K stands for ignore
        idx = torch.where(out.labels == IGNORE_INDEX, torch.full_like(out.labels, k), out.labels)
        offset = (idx + torch.arange(b, device=idx.device).view(b, 1, 1) * (k + 1)).flatten()
        pixels = torch.bincount(offset, minlength=b * (k + 1)).view(b, k + 1)
        changed = torch.bincount(offset[out.changed.flatten()], minlength=b * (k + 1)).view(
            b, k + 1
        )
        conf_sum = torch.bincount(
            offset, weights=out.confidence.flatten().double(), minlength=b * (k + 1)
        ).view(b, k + 1)
        labels_np = out.labels.to(torch.uint8).cpu().numpy()
        conf_np = (
            (out.confidence * 255.0).round_().to(torch.uint8).cpu().numpy()
            if self.confidence
            else None
        )
        soft_ids = soft_probs = None
        if self.soft_top_k:
            ids, sp = top_k_soft(out.masked, out.labels, self.soft_top_k)
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
                _Result(
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

    # ------------------------------------------------------------------ writing
    def _write(
        self, folder: Path, res: _Result, ontology: Ontology, dataset: str
    ) -> dict[str, Any]:
        key = res.sample.key
        names = [*self.taxonomy.train_names, IGNORE_NAME]
        rel = label_relpath(key)
        digests = {rel: write_bytes_atomic(folder / rel, encode_label_png(res.labels))}
        if res.confidence is not None:
            crel = label_relpath(key, CONF_SUFFIX)
            digests[crel] = write_bytes_atomic(folder / crel, encode_label_png(res.confidence))
        if res.soft_ids is not None and res.soft_probs is not None:
            srel = label_relpath(key, SOFT_SUFFIX)
            digests[srel] = write_bytes_atomic(
                folder / srel, encode_npz({"ids": res.soft_ids, "probs": res.soft_probs})
            )
        if res.teacher is not None:
            from labelbridge.viz.panels import render_panel

            png = render_panel(
                res.sample.image,
                res.sample.label,
                res.teacher,
                res.labels,
                source=self.taxonomy,
                extra=ontology.extra,
                title=f"{dataset}: {key}",
                priors=self.priors,
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

    # ------------------------------------------------------------------ one dataset
    def run_dataset(
        self,
        *,
        entry: DatasetEntry,
        dataset: SegmentationDataset,
        ontology: Ontology,
        folder: Path,
        shard: Shard | None = None,
    ) -> DatasetSummary:
        """Pseudo-label one dataset (this process's shard of it) into ``folder``.

        Raises:
            CheckpointError: teacher and mapping disagree on the taxonomy.
            ConfigError: the reader's taxonomy is not the mapping's extra taxonomy, the
                split has no labels while priors are on, or the folder holds other settings.
            OutputWriteError: a write failed (disk full); the manifest stays valid.
            NonFiniteScoresError: the teacher produced NaN/inf.
        """
        start = time.perf_counter()
        shard = shard or Shard()
        check_teacher(self.teacher, ontology)
        if not dataset.taxonomy.same_label_space(ontology.extra):
            raise ConfigError(
                f"dataset entry {entry.name!r}: reader {entry.reader!r} yields {dataset.taxonomy.name!r} labels "
                f"but mapping {ontology.origin} maps from {ontology.extra.name!r}"
            )
        total = len(dataset) if entry.limit is None else min(entry.limit, len(dataset))
        if self.priors and total and dataset.pairs[0].label is None:
            raise ConfigError(
                f"dataset entry {entry.name!r}: split {entry.split!r} has no labels, so priors cannot be "
                f"applied; set priors: false (Naive Student) or use a labelled split"
            )
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(folder)
        self._prepare_folder(folder, self.settings(entry, ontology))
        keys = [dataset.pairs[p].key for p in range(total)]
        listing_skips = [_listing_skip(dataset, rec) for rec in getattr(dataset, "skipped", [])]
        for skip in listing_skips:
            log.warning("skipped while listing: %s", skip["error"])
        previews = set(preview_positions(total, self.previews))
        done = read_manifests(folder)
        mine = [p for p in range(total) if shard.selects(p)]
        todo = []
        for p in mine:
            needs_preview = p in previews and not (folder / preview_relpath(keys[p])).is_file()
            if needs_preview or not verify_outputs(done.get(keys[p], {}), folder):
                todo.append(p)
        resumed = len(mine) - len(todo)
        if resumed:
            log.info(
                "%s: %d of %d images already done, skipping them", entry.name, resumed, len(mine)
            )
        priors_t = (
            (
                allowed_tensor(ontology.allowed, self.device),
                void_tensor(ontology.void_allowed, self.device),
            )
            if self.priors
            else None
        )
        processed, failed = self._process(
            folder,
            dataset,
            todo,
            priors_t,
            previews,
            ontology,
            entry.name,
            shard,
            resumed,
            len(mine),
        )
        barrier(shard)
        records = None
        if not shard.is_single and (not shard.from_torch or shard.index == 0):
            merge_manifests(folder, keys)
        union = read_manifests(folder)
        records = [union[k] for k in keys if k in union]
        report = build_report(
            records,
            dataset=entry.name,
            taxonomy=self.taxonomy,
            total_images=total,
            extra_skipped=listing_skips,
            settings={
                k: v for k, v in self.settings(entry, ontology).items() if k != "taxonomy_def"
            },
        )
        if not shard.from_torch or shard.index == 0:
            write_report(folder, report)
        barrier(shard)
        return DatasetSummary(
            name=entry.name,
            folder=folder,
            total=total,
            mine=len(mine),
            processed=processed,
            resumed=resumed,
            failed=failed + len(listing_skips),
            seconds=time.perf_counter() - start,
            report=report,
        )

    def _samples(
        self, dataset: SegmentationDataset, positions: list[int], pool: ThreadPoolExecutor | None
    ) -> Iterator[tuple[int, Sample | DatasetError]]:
        """Samples in order, decoded ahead by ``pool`` (errors are yielded, not raised)."""

        def load(pos: int) -> Sample | DatasetError:
            try:
                return dataset.load(pos)
            except DatasetError as exc:
                return exc

        if pool is None:
            for pos in positions:
                yield pos, load(pos)
            return
        depth = max(2, 2 * self.num_workers) + self.batch_size
        ahead: deque[tuple[int, Future]] = deque()
        it = iter(positions)
        for pos in it:
            ahead.append((pos, pool.submit(load, pos)))
            if len(ahead) >= depth:
                break
        try:
            while ahead:
                pos, fut = ahead.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    ahead.append((nxt, pool.submit(load, nxt)))
                yield pos, fut.result()
        finally:
            for _, fut in ahead:
                fut.cancel()

    def _batches(
        self, stream: Iterator[tuple[int, Sample | DatasetError]]
    ) -> Iterator[list[tuple[int, Sample | DatasetError]]]:
        """Consecutive items grouped into batches of equal image size (errors alone)."""
        batch: list[tuple[int, Sample | DatasetError]] = []
        for pos, item in stream:
            if isinstance(item, DatasetError):
                if batch:
                    yield batch
                    batch = []
                yield [(pos, item)]
                continue
            if batch and (
                len(batch) >= self.batch_size or batch[0][1].image.shape != item.image.shape
            ):  # type: ignore[union-attr]
                yield batch
                batch = []
            batch.append((pos, item))
        if batch:
            yield batch

    def _process(
        self,
        folder: Path,
        dataset: SegmentationDataset,
        todo: list[int],
        priors_t: tuple[torch.Tensor, torch.Tensor | None] | None,
        previews: set[int],
        ontology: Ontology,
        name: str,
        shard: Shard,
        resumed: int,
        mine: int,
    ) -> tuple[int, int]:
        lookups = evaluation_lookups(ontology, self.device)
        processed = failed = 0
        bar = Progress(total=mine, initial=resumed, desc=name, enabled=self.progress)
        read_pool = (
            ThreadPoolExecutor(self.num_workers, thread_name_prefix="lb-decode")
            if self.num_workers
            else None
        )
        write_pool = (
            ThreadPoolExecutor(self.num_workers, thread_name_prefix="lb-write")
            if self.num_workers
            else None
        )
        manifest = ManifestWriter(folder / manifest_name(shard.index, shard.count))
        pending: deque[Future | dict[str, Any]] = deque()
        max_pending = 2 * max(1, self.num_workers) + self.batch_size

        def finish(item: Future | dict[str, Any]) -> None:
            nonlocal processed
            record = item.result() if isinstance(item, Future) else item
            manifest.append(record)
            if "error" not in record:
                processed += 1
            bar.update(1)

        def drain(block_until: int) -> None:
            while pending and (
                len(pending) > block_until
                or not isinstance(pending[0], Future)
                or pending[0].done()
            ):
                finish(pending.popleft())

        def submit(fn: Callable[[], dict[str, Any]]) -> None:
            if write_pool is None:
                pending.append(fn())
            else:
                pending.append(write_pool.submit(fn))

        try:
            for batch in self._batches(self._samples(dataset, todo, read_pool)):
                first = batch[0][1]
                if isinstance(first, DatasetError):
                    if dataset.on_error == "raise":
                        raise first
                    pos = batch[0][0]
                    log.warning("skipping %s", first)
                    failed += 1
                    pending.append(
                        {
                            "key": dataset.pairs[pos].key,
                            "input": str(dataset.pairs[pos].image),
                            "error": str(first),
                        }
                    )
                    drain(max_pending)
                    continue
                results = self._compute(batch, priors_t, previews, lookups)  # type: ignore[arg-type]
                for res in results:
                    submit(lambda res=res: self._write(folder, res, ontology, name))
                drain(max_pending)
            drain(0)
        except BaseException:
            # keep every image whose files are in place; then stop
            for item in pending:
                if isinstance(item, Future):
                    item.cancel()
            if write_pool is not None:
                write_pool.shutdown(wait=True, cancel_futures=True)
            for item in pending:
                if isinstance(item, dict) or (not item.cancelled() and item.exception() is None):
                    try:
                        manifest.append(item if isinstance(item, dict) else item.result())
                    except Exception:  # noqa: BLE001 - the original error is raised below
                        break
            raise
        finally:
            manifest.close()
            bar.close()
            if read_pool is not None:
                read_pool.shutdown(wait=True, cancel_futures=True)
            if write_pool is not None:
                write_pool.shutdown(wait=True)
        return processed, failed


# ---------------------------------------------------------------------------- entry point
def run_pseudo_label(
    cfg: PseudoLabelConfig,
    *,
    shard: Shard | None = None,
    teacher: Teacher | None = None,
    progress: bool = False,
) -> list[DatasetSummary]:
    """Pseudo-label every dataset of ``cfg``.

    Args:
        cfg: the validated config.
        shard: this process's shard (default: from torch.distributed / torchrun, else all).
        teacher: an already loaded teacher (default: load ``cfg.teacher``).
        progress: show progress bars on stderr.

    Returns:
        one :class:`DatasetSummary` per dataset entry, in config order.

    Example:
        >>> from labelbridge.config.pseudo import load_pseudo_config
        >>> cfg = load_pseudo_config("configs/pseudo_camvid_idd_to_cityscapes.yaml")  # doctest: +SKIP
        >>> [s.report["complete"] for s in run_pseudo_label(cfg)]  # doctest: +SKIP
        [True, True, True]
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    shard = detect_shard(shard)
    if teacher is None:
        device = resolve_device(cfg.device)
        if (
            device.type == "cuda"
        ):  # deterministic kernels: resumed and sharded runs give identical bytes
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        teacher = load_teacher(cfg.teacher, device)
    labeler = PseudoLabeler.from_config(cfg, teacher, progress=progress)
    out = Path(cfg.output)
    # validate all entries before spending time on the first
    prepared = []
    for entry in cfg.datasets:
        ontology = load_ontology(entry.ontology)
        check_teacher(teacher, ontology)
        dataset = create_dataset(entry.reader, entry.root, entry.split, on_error=entry.on_error)
        prepared.append((entry, dataset, ontology))
    summaries = []
    for entry, dataset, ontology in prepared:
        summaries.append(
            labeler.run_dataset(
                entry=entry,
                dataset=dataset,
                ontology=ontology,
                folder=out / entry.name,
                shard=shard,
            )
        )
    return summaries
