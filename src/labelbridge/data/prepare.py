"""Convert a dataset's published form once into files a reader takes (``datasets prepare``).

Some datasets do not ship per-image label maps: nuImages stores run-length-encoded
object and surface masks in JSON tables, Waymo v2 stores images and panoptic labels in
parquet files, COCO panoptic and WildDash 2 store panoptic PNGs plus a JSON segment
table, IDD stores polygons. A :class:`Preparer` lists the work as
:class:`PrepareTask` objects and converts one task into encoded files;
:func:`prepare_dataset` runs the tasks:

- **resumable**: a task whose output files all exist is skipped (a re-run does only
  what is missing);
- **atomic**: every file is written to a temporary name, ``fsync``-ed and renamed, so a
  kill leaves no partial file (see :mod:`labelbridge.files`), hence a resumed
  run gives byte-identical outputs (encodings are deterministic);
- **parallel** over ``jobs`` worker processes, and **sharded** across machines: shard
  ``i`` of ``n`` (``--shard``, or found by :func:`~labelbridge.sharding.detect_shard`:
  torchrun, an srun task) takes the tasks of each split whose index ``% n == i``, so
  ``srun --ntasks=4 labelbridge datasets prepare ...`` splits the work four ways; the
  shards write disjoint files, and a re-run of any shard resumes;
- **visible**: a progress bar with ETA on stderr.

The output folder is a dataset root of the same reader: it holds :data:`PREPARED_FILE`
(which dataset, from which source root) and the prepared files. A reader given that
folder reads labels from it and images from the source root when the prepared output
does not hold them (see :meth:`labelbridge.data.base.SegmentationDataset.source_root`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from labelbridge.data.base import PREPARED_FILE, SampleError, SkipRecord
from labelbridge.errors import DatasetError, UserError
from labelbridge.files import remove_stale_temp_files, write_bytes_atomic
from labelbridge.progress import Progress
from labelbridge.sharding import Shard, detect_shard

logger = logging.getLogger(__name__)

#: Version of the prepared-folder format (bumped when outputs change meaning).
PREPARED_FORMAT = 1


@dataclass(frozen=True)
class PrepareTask:
    """One unit of conversion work.

    Attributes:
        key: names the task in messages and reports (e.g. the image name).
        outputs: the files it writes, relative to the output folder.
        source: what :meth:`Preparer.convert` needs (picklable: it travels to workers).
    """

    key: str
    outputs: tuple[str, ...]
    source: Any = None


class Preparer:
    """Base class of a dataset's conversion. Subclasses set the class attributes and
    implement :meth:`tasks` and :meth:`convert`.

    Args:
        root: the dataset root in its published layout.

    Class attributes:
        name: registry key; the reader of the same name reads the output.
        splits: the splits that can be prepared.
        required: ``True`` when the reader cannot read the published form at all
            (otherwise preparing only makes reading faster).
        holds_images: ``True`` when the output holds the images too (no source root
            needed afterwards).
    """

    name: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ()
    required: ClassVar[bool] = True
    holds_images: ClassVar[bool] = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        #: split -> remarks for the report (e.g. images left out because unlabelled).
        self.notes: dict[str, list[str]] = {}

    def present_splits(self) -> tuple[str, ...]:
        """The splits of :attr:`splits` whose published files are under the root
        (default: all of them); prepared when no split is asked for."""
        return self.splits

    def note(self, split: str, text: str) -> None:
        """Add a remark to ``split``'s report (and the log)."""
        logger.info("%s %s: %s", self.name, split, text)
        self.notes.setdefault(split, []).append(text)

    def tasks(self, split: str) -> list[PrepareTask]:
        """The tasks of ``split``, in a fixed order.

        Raises:
            DatasetError: the published files are missing or malformed (named).
        """
        raise NotImplementedError

    def convert(self, task: PrepareTask) -> dict[str, bytes]:
        """Encoded output files of ``task``: output path (one of ``task.outputs``) -> bytes.

        Raises:
            SampleError: a problem with one source file (named); the task is skipped
                under ``on_error="skip"``.
        """
        raise NotImplementedError


PREPARERS: dict[str, type[Preparer]] = {}


def register_preparer(cls: type[Preparer]) -> type[Preparer]:
    """Class decorator adding a preparer to :data:`PREPARERS` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    PREPARERS[cls.name] = cls
    return cls


def preparer_class(name: str) -> type[Preparer]:
    """The preparer registered as ``name``.

    Raises:
        UserError: no dataset of that name needs or offers preparing (lists those that do).
    """
    from labelbridge.data import readers  # noqa: F401  (registers readers and preparers)

    try:
        return PREPARERS[name]
    except KeyError:
        raise UserError(
            f"dataset {name!r} has no prepare step; datasets with one: "
            f"{', '.join(sorted(PREPARERS))}"
        ) from None


@dataclass
class SplitPrepared:
    """What preparing one split did (``tasks``: this shard's; ``split_tasks``: all shards')."""

    split: str
    tasks: int = 0
    split_tasks: int = 0
    already_done: int = 0
    converted: int = 0
    files_written: int = 0
    skipped: list[SkipRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class PrepareReport:
    """Summary of :func:`prepare_dataset` (``--json`` prints :meth:`to_dict`)."""

    dataset: str
    root: str
    out: str
    jobs: int
    shard: str = "0/1"
    splits: list[SplitPrepared] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(s.skipped for s in self.splits)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def _marker(preparer: Preparer, out: Path) -> dict[str, Any]:
    return {
        "dataset": preparer.name,
        "source_root": str(preparer.root.resolve()),
        "holds_images": preparer.holds_images,
        "format": PREPARED_FORMAT,
    }


def check_marker(out: Path, expected: dict[str, Any]) -> None:
    """Refuse to mix two datasets or two source roots in one output folder.

    Raises:
        UserError: ``out`` holds another dataset's or another source's prepared files.
    """
    path = out / PREPARED_FILE
    if not path.is_file():
        return
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable prepared-folder marker: {exc}") from None
    for key in ("dataset", "source_root", "format"):
        if found.get(key) != expected[key]:
            raise UserError(
                f"{path}: this folder was prepared with {key} {found.get(key)!r}, not "
                f"{expected[key]!r}; choose another --out folder"
            )


def _run_task(preparer: Preparer, out: Path, task: PrepareTask, on_error: str) -> tuple[int, Any]:
    """Convert and write one task in a worker; returns (files written, skip or None)."""
    try:
        files = preparer.convert(task)
    except SampleError as exc:
        if on_error == "raise":
            raise
        return 0, SkipRecord(exc.path, str(exc), exc.kind)
    unexpected = set(files) - set(task.outputs)
    if unexpected:
        raise RuntimeError(
            f"{preparer.name}: task {task.key} wrote undeclared {sorted(unexpected)}"
        )
    # declared outputs last-written last: the final one marks the task done
    for rel in sorted(files, key=lambda r: task.outputs.index(r)):
        write_bytes_atomic(out / rel, files[rel])
    return len(files), None


def _die_with_parent() -> None:
    """Worker initialiser: on Linux, ask the kernel to kill this worker when the parent
    dies (a killed ``datasets prepare`` leaves no worker waiting forever)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        logger.debug("cannot set PR_SET_PDEATHSIG; workers may outlive a killed parent")


def _done(out: Path, task: PrepareTask) -> bool:
    return all((out / rel).is_file() for rel in task.outputs)


def prepare_dataset(
    name: str,
    root: str | Path,
    out: str | Path,
    *,
    splits: Iterable[str] | None = None,
    jobs: int = 1,
    on_error: str = "raise",
    progress: bool = True,
    shard: Shard | None = None,
) -> PrepareReport:
    """Prepare dataset ``name`` from ``root`` into ``out`` (see the module docstring).

    Args:
        name: dataset (reader) name with a preparer.
        root: published dataset root.
        out: output folder (created); a later run into the same folder resumes.
        splits: splits to prepare (default: :meth:`Preparer.present_splits`).
        jobs: worker processes (1: in this process).
        on_error: ``"raise"`` or ``"skip"`` (record bad source files and go on).
        progress: show a progress bar on stderr.
        shard: this process's shard of every split's tasks (default:
            :func:`~labelbridge.sharding.detect_shard`: torchrun, an srun task, else all).

    Raises:
        UserError: unknown dataset or split, missing source files, an output folder of
            another dataset or source, a bad source file under ``on_error="raise"``.
    """

    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    cls = preparer_class(name)
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root of {name!r} is not a folder")
    out = Path(out)
    if out.resolve() == root.resolve():
        raise UserError(
            f"{out}: --out must differ from --root (the published files stay as they are)"
        )
    preparer = cls(root)
    chosen = list(splits) if splits else list(preparer.present_splits())
    if not chosen:
        raise DatasetError(
            f"{root}: no split of {name!r} found to prepare (splits: {list(cls.splits)})"
        )
    for split in chosen:
        if split not in cls.splits:
            raise DatasetError(
                f"dataset {name!r} has no split {split!r} to prepare; splits: {list(cls.splits)}"
            )
    shard = detect_shard(shard)
    marker = _marker(preparer, out)
    check_marker(out, marker)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out)
    write_bytes_atomic(out / PREPARED_FILE, (json.dumps(marker, indent=2) + "\n").encode())

    report = PrepareReport(name, str(root), str(out), jobs, shard=str(shard))
    start = time.perf_counter()
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_die_with_parent) if jobs > 1 else None
    try:
        for split in chosen:
            every = preparer.tasks(split)
            tasks = [t for i, t in enumerate(every) if shard.selects(i)]
            todo = [t for t in tasks if not _done(out, t)]
            s = SplitPrepared(
                split,
                tasks=len(tasks),
                split_tasks=len(every),
                already_done=len(tasks) - len(todo),
                notes=list(preparer.notes.get(split, [])),
            )
            report.splits.append(s)
            logger.info(
                "%s %s: %d tasks%s, %d already done",
                name,
                split,
                len(tasks),
                "" if shard.is_single else f" (shard {shard} of {len(every)})",
                s.already_done,
            )
            bar = Progress(
                total=len(tasks),
                initial=s.already_done,
                desc=f"prepare {name} {split}",
                unit="file",
                enabled=progress,
            )
            try:
                if pool is None:
                    results: Iterable[tuple[int, Any]] = (
                        _run_task(preparer, out, t, on_error) for t in todo
                    )
                else:
                    chunk = max(1, min(64, len(todo) // (jobs * 8) or 1))
                    results = pool.map(
                        _run_task,
                        [preparer] * len(todo),
                        [out] * len(todo),
                        todo,
                        [on_error] * len(todo),
                        chunksize=chunk,
                    )
                for written, skip in results:
                    if skip is None:
                        s.converted += 1
                        s.files_written += written
                    else:
                        s.skipped.append(skip)
                    bar.update(1)
            finally:
                bar.close()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def default_jobs() -> int:
    """Worker processes used when ``--jobs`` is not given: the usable CPU cores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)
