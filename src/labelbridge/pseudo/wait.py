"""Waiting for the other shards of a pseudo-labelling run that has no process group.

Under ``srun`` (or torchrun) without an initialised ``torch.distributed`` group, the
shards of a run finish independently: each labels its images, and the last one to
finish merges the manifest parts and writes ``report.json`` of every image (see
:mod:`labelbridge.pseudo.run`). A process that goes on to use the labels (the pipeline's
student stage) must first wait for the others: :func:`wait_for_shards`. With a process
group, :func:`labelbridge.pseudo.distributed.barrier` does that inside the run.

A dataset folder is finished when its ``report.json`` covers every image of the run
(``images.total`` is the dataset's image count and ``images.remaining`` is ``0``: each
image labelled or recorded as a bad file) and no shard of the run holds its lock file
``manifest.<i>-of-<n>.jsonl.lock`` any more (a shard releases it after writing its
report).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelbridge.config.pseudo import DatasetEntry, PseudoLabelConfig
from labelbridge.data import create_dataset
from labelbridge.data.pseudo_folder import REPORT_FILE
from labelbridge.errors import UserError
from labelbridge.locks import LOCK_SUFFIX
from labelbridge.pseudo.manifest import manifest_name, read_manifests
from labelbridge.sharding import Shard

log = logging.getLogger(__name__)

#: Pause between two looks at the folders.
POLL_SECONDS = 0.5
#: How often a waiting process says again what it still waits for.
LOG_EVERY_SECONDS = 60.0


class ShardsUnfinishedError(UserError):
    """The other shards of a run did not finish within the wait."""


@dataclass(frozen=True)
class _Folder:
    """One dataset folder of the run and the keys of its images, in dataset order."""

    folder: Path
    keys: list[str]


def _folders(cfg: PseudoLabelConfig) -> list[_Folder]:
    return [_Folder(Path(cfg.output) / entry.name, _keys(entry)) for entry in cfg.datasets]


def _keys(entry: DatasetEntry) -> list[str]:
    """The keys of the images the run labels for ``entry`` (after ``limit``)."""
    dataset = create_dataset(entry.reader, entry.root, entry.split, on_error=entry.on_error)
    total = len(dataset) if entry.limit is None else min(entry.limit, len(dataset))
    return [dataset.pairs[p].key for p in range(total)]


def _read_report(path: Path) -> dict[str, Any] | None:
    """``report.json`` of a folder, or ``None`` where it is absent or being replaced."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # written atomically: only a broken file fails
        raise UserError(f"{path}: unreadable pseudo-label report ({exc})") from None
    return data if isinstance(data, dict) else None


def _held_locks(folder: Path, count: int) -> list[int]:
    """The shards of ``count`` whose lock file is in ``folder`` (still working)."""
    return [i for i in range(count) if (folder / (manifest_name(i, count) + LOCK_SUFFIX)).exists()]


def _finished(item: _Folder, count: int) -> bool:
    report = _read_report(item.folder / REPORT_FILE)
    images = report.get("images") if report is not None else None
    covers_all = (
        isinstance(images, dict)
        and images.get("total") == len(item.keys)
        and images.get("remaining") == 0
    )
    return covers_all and not _held_locks(item.folder, count)


def unfinished_shards(folder: Path, keys: list[str], count: int) -> dict[int, str]:
    """``{shard index: what it still lacks}`` for the shards of ``count`` in ``folder``
    that have images without a manifest record or still hold their lock file."""
    union = read_manifests(folder)
    held = set(_held_locks(folder, count))
    missing: dict[int, str] = {}
    for i in range(count):
        shard = Shard(i, count)
        mine = [k for p, k in enumerate(keys) if shard.selects(p)]
        todo = sum(1 for k in mine if k not in union)
        if todo or i in held:
            lock = manifest_name(i, count) + LOCK_SUFFIX
            missing[i] = f"{todo} of {len(mine)} images to do, lock file {lock} " + (
                "present (still working)" if i in held else "absent (not started, or stopped)"
            )
    return missing


def _describe(item: _Folder, count: int) -> str:
    missing = unfinished_shards(item.folder, item.keys, count)
    if not missing:  # every image has a record, the last shard's report is not written yet
        return f"the report of {item.folder} (its last shard is merging)"
    shards = "; ".join(f"shard {i}/{count} ({what})" for i, what in missing.items())
    return f"{shards} of {item.folder}"


def wait_for_shards(
    cfg: PseudoLabelConfig, shard: Shard, *, timeout: float, poll: float = POLL_SECONDS
) -> None:
    """After this process's shard of ``cfg``: wait until every shard of every dataset
    folder of ``cfg`` is finished (see the module doc), logging what it waits for. A
    no-op for one process and with a process group (the run's barrier waited already).

    Args:
        cfg: the run's config (its ``output`` and ``datasets``).
        shard: this process's shard (:func:`~labelbridge.sharding.detect_shard`).
        timeout: seconds to wait in all.
        poll: seconds between two looks.

    Raises:
        ShardsUnfinishedError: ``timeout`` passed; names each folder and its shards still
            missing.
    """
    if shard.is_single or shard.from_torch:
        return
    deadline = time.monotonic() + timeout
    pending = _folders(cfg)
    next_log = 0.0
    while True:
        pending = [item for item in pending if not _finished(item, shard.count)]
        if not pending:
            log.info("shard %s: every shard of %s is finished", shard, cfg.output)
            return
        now = time.monotonic()
        if now >= deadline:
            raise ShardsUnfinishedError(
                f"{cfg.output}: shard {shard} waited {timeout:g} s for the other shards of "
                "this run without a process group, and these are not finished: "
                + " | ".join(_describe(item, shard.count) for item in pending)
                + ". See those tasks' logs; running the job again resumes (finished images "
                "are kept); pseudo.shard_wait sets how long to wait"
            )
        if now >= next_log:
            log.info(
                "shard %s is done; waiting up to %.0f s for %s",
                shard,
                deadline - now,
                " | ".join(_describe(item, shard.count) for item in pending),
            )
            next_log = now + LOG_EVERY_SECONDS
        time.sleep(min(poll, max(0.0, deadline - now)))
