"""The pseudo-labelling run: teacher + TTA + priors over each configured extra dataset.

Per dataset entry the run writes, under ``<output>/<name>/``:

* ``<key>.png``: uint8 mode-L source train ids (``255`` = ignore) at the image's
  native resolution, mirroring the dataset's relative paths;
* optionally ``<key>_conf.png`` (max masked probability x 255) and ``<key>_soft.npz``
  (``ids`` ``(k, H, W)`` uint8 and ``probs`` ``(k, H, W)`` float16, renormalised over
  the allowed set);
* ``manifest.jsonl`` (or shard parts), ``pseudo_labels.yaml`` (taxonomy and
  settings, read by training), ``report.json`` / ``report.md``, ``previews/*.png``;
* while a process works on it, its shard's lock file ``<manifest name>.lock``: a second
  process for the same shard is refused (:mod:`labelbridge.locks`).

Work is split so that the main thread only runs the model: a thread pool decodes the
next images while the model runs, another encodes and writes finished ones; manifest
lines are appended in dataset order once an image's files are in place. Re-running
skips images whose manifest record and files agree; results are deterministic (fixed
order, fixed encodings, deterministic cuDNN; fix ``threads`` for identical bytes across
machines). A folder made with other settings (teacher checksum, mapping, TTA, priors,
outputs) is refused instead of being mixed into.

Here: :class:`PseudoLabeler` (one dataset entry) and :func:`run_pseudo_label` (every
entry of a config). The parts: :mod:`~labelbridge.pseudo.teacher` (loading and checking
the teacher), :mod:`~labelbridge.pseudo.labelling` (one batch: TTA, priors, statistics;
one image's files), :mod:`~labelbridge.pseudo.loop` (decode ahead, batch, write in
order), :mod:`~labelbridge.pseudo.resume` (the settings that must match, what is done).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labelbridge.config.pseudo import DatasetEntry, PseudoLabelConfig
from labelbridge.data import Sample, SegmentationDataset, create_dataset
from labelbridge.data.pseudo_folder import REPORT_FILE
from labelbridge.errors import ConfigError
from labelbridge.files import remove_stale_temp_files
from labelbridge.locks import LOCK_SUFFIX, claim_lock
from labelbridge.models.device import resolve_device
from labelbridge.models.tta import TTAPredictor
from labelbridge.progress import Progress
from labelbridge.pseudo.distributed import Shard, barrier, detect_shard
from labelbridge.pseudo.labelling import (
    ImageResult,
    PriorTensors,
    evaluation_lookups,
    label_batch,
    write_result,
)
from labelbridge.pseudo.loop import label_positions
from labelbridge.pseudo.manifest import manifest_name, merge_manifests, read_manifests
from labelbridge.pseudo.report import build_report, write_report
from labelbridge.pseudo.resume import FINGERPRINT_KEYS, positions_to_do, prepare_folder
from labelbridge.pseudo.teacher import Teacher, check_teacher, load_teacher
from labelbridge.taxonomy import Ontology, load_ontology
from labelbridge.taxonomy.priors import allowed_tensor, void_tensor

__all__ = [
    "FINGERPRINT_KEYS",
    "DatasetSummary",
    "PseudoLabeler",
    "Teacher",
    "check_teacher",
    "evaluation_lookups",
    "load_teacher",
    "preview_positions",
    "resolve_device",
    "run_pseudo_label",
]

log = logging.getLogger(__name__)

#: Lock file under which a shard without a process group merges and reports.
FINISH_LOCK = REPORT_FILE + LOCK_SUFFIX
#: How long a shard waits for another one's merge and report.
FINISH_WAIT_SECONDS = 300.0


def preview_positions(total: int, count: int) -> list[int]:
    """``count`` evenly spaced positions in ``0..total-1`` (the images that get previews)."""
    if count <= 0 or total <= 0:
        return []
    if count >= total:
        return list(range(total))
    return sorted({int(round(x)) for x in np.linspace(0, total - 1, count)})


def _listing_skip(dataset: SegmentationDataset, record: Any) -> dict[str, str]:
    """A file the reader dropped while listing (``on_error: skip``) as a report entry."""
    path = Path(str(record.path))
    try:
        key = path.relative_to(dataset.root).with_suffix("").as_posix()
    except ValueError:
        key = path.with_suffix("").as_posix()
    return {"key": key, "input": str(path), "error": str(record.problem)}


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

    def run_dataset(
        self,
        *,
        entry: DatasetEntry,
        dataset: SegmentationDataset,
        ontology: Ontology,
        folder: Path,
        shard: Shard | None = None,
        force_unlock: bool = False,
    ) -> DatasetSummary:
        """Pseudo-label one dataset (this process's shard of it) into ``folder``, holding
        the shard's lock file ``<manifest name>.lock`` there while it works (see
        :func:`labelbridge.locks.claim_lock`; ``force_unlock`` takes over one left by a
        process on another host).

        Raises:
            CheckpointError: teacher and mapping disagree on the taxonomy.
            ConfigError: the reader's taxonomy is not the mapping's extra taxonomy, the
                split has no labels while priors are on, or the folder holds other settings.
            LockHeldError: another process works on the same shard of ``folder``.
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
        with claim_lock(
            folder / (manifest_name(shard.index, shard.count) + LOCK_SUFFIX),
            what=f"shard {shard} of {folder}",
            details={"shard": str(shard)},
            force=force_unlock,
        ):
            summary = self._label_folder(
                entry, dataset, ontology, folder, shard, total, force_unlock=force_unlock
            )
        summary.seconds = time.perf_counter() - start
        return summary

    def _label_folder(
        self,
        entry: DatasetEntry,
        dataset: SegmentationDataset,
        ontology: Ontology,
        folder: Path,
        shard: Shard,
        total: int,
        *,
        force_unlock: bool,
    ) -> DatasetSummary:
        """(Called by :meth:`run_dataset` under the shard's lock.) Label what is still to
        do, merge the manifests when every shard is done, write the report."""
        remove_stale_temp_files(folder)
        prepare_folder(folder, self.settings(entry, ontology))
        keys = [dataset.pairs[p].key for p in range(total)]
        listing_skips = [_listing_skip(dataset, rec) for rec in getattr(dataset, "skipped", [])]
        for skip in listing_skips:
            log.warning("skipped while listing: %s", skip["error"])
        previews = set(preview_positions(total, self.previews))
        mine = [p for p in range(total) if shard.selects(p)]
        todo = positions_to_do(folder, keys, mine, previews)
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
        if shard.from_torch or shard.is_single:  # rank 0 merges and writes after the barrier
            report = self._merge_and_report(entry, ontology, folder, shard, keys, listing_skips)
        else:  # shards finishing together take turns: the last one sees every shard's lines
            with claim_lock(
                folder / FINISH_LOCK,
                what=f"the manifest merge and report of {folder}",
                force=force_unlock,
                wait=FINISH_WAIT_SECONDS,
            ):
                report = self._merge_and_report(entry, ontology, folder, shard, keys, listing_skips)
        barrier(shard)
        return DatasetSummary(
            name=entry.name,
            folder=folder,
            total=total,
            mine=len(mine),
            processed=processed,
            resumed=resumed,
            failed=failed + len(listing_skips),
            seconds=0.0,
            report=report,
        )

    def _merge_and_report(
        self,
        entry: DatasetEntry,
        ontology: Ontology,
        folder: Path,
        shard: Shard,
        keys: list[str],
        listing_skips: list[dict[str, str]],
    ) -> dict[str, Any]:
        """Merge the manifest parts if every image is done (a shard of several), build the
        report of the union of all shards so far and write it (not on ranks > 0 of a
        process group); returns the report."""
        writes = not shard.from_torch or shard.index == 0
        if not shard.is_single and writes:
            merge_manifests(folder, keys)
        union = read_manifests(folder)
        records = [union[k] for k in keys if k in union]
        report = build_report(
            records,
            dataset=entry.name,
            taxonomy=self.taxonomy,
            total_images=len(keys),
            extra_skipped=listing_skips,
            settings={
                k: v for k, v in self.settings(entry, ontology).items() if k != "taxonomy_def"
            },
        )
        if writes:
            write_report(folder, report)
        return report

    def _process(
        self,
        folder: Path,
        dataset: SegmentationDataset,
        todo: list[int],
        priors_t: PriorTensors,
        previews: set[int],
        ontology: Ontology,
        name: str,
        shard: Shard,
        resumed: int,
        mine: int,
    ) -> tuple[int, int]:
        """Label ``todo`` (:func:`~labelbridge.pseudo.loop.label_positions`); returns
        ``(processed, failed)``."""
        lookups = evaluation_lookups(ontology, self.device)

        def compute(batch: list[tuple[int, Sample]]) -> list[ImageResult]:
            return label_batch(
                self.predictor,
                batch,
                device=self.device,
                priors_t=priors_t,
                preview=previews,
                lookups=lookups,
                confidence=self.confidence,
                soft_top_k=self.soft_top_k,
            )

        def write(res: ImageResult) -> dict[str, Any]:
            return write_result(
                folder,
                res,
                taxonomy=self.taxonomy,
                ontology=ontology,
                dataset=name,
                priors=self.priors,
            )

        return label_positions(
            dataset,
            todo,
            manifest_path=folder / manifest_name(shard.index, shard.count),
            compute=compute,
            write=write,
            bar=Progress(total=mine, initial=resumed, desc=name, enabled=self.progress),
            num_workers=self.num_workers,
            batch_size=self.batch_size,
        )


# ---------------------------------------------------------------------------- entry point
def run_pseudo_label(
    cfg: PseudoLabelConfig,
    *,
    shard: Shard | None = None,
    teacher: Teacher | None = None,
    progress: bool = False,
    force_unlock: bool = False,
) -> list[DatasetSummary]:
    """Pseudo-label every dataset of ``cfg``.

    Args:
        cfg: the validated config.
        shard: this process's shard (default: from torch.distributed, torchrun or an srun
            task, else all; see :func:`~labelbridge.sharding.detect_shard`).
        teacher: an already loaded teacher (default: load ``cfg.teacher``).
        progress: show progress bars on stderr.
        force_unlock: take over shard lock files left by processes on other hosts
            (see :func:`labelbridge.locks.claim_lock`).

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
                force_unlock=force_unlock,
            )
        )
    return summaries
