"""The labelling loop over one dataset's positions: the main thread only runs the model.

A thread pool decodes the next images while the model runs (:func:`prefetch_samples`),
consecutive images of equal size form batches (:func:`size_batches`), another pool
encodes and writes finished ones, and manifest lines are appended in dataset order once
an image's files are in place (:func:`label_positions`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labelbridge.data import Sample, SegmentationDataset
from labelbridge.errors import DatasetError
from labelbridge.progress import Progress
from labelbridge.pseudo.labelling import ImageResult
from labelbridge.pseudo.manifest import ManifestWriter
from labelbridge.threads import ordered_map

log = logging.getLogger(__name__)

#: A dataset position with its sample, or the error reading it.
Item = tuple[int, Sample | DatasetError]


def prefetch_samples(
    dataset: SegmentationDataset,
    positions: list[int],
    pool: ThreadPoolExecutor | None,
    *,
    depth: int,
) -> Iterator[Item]:
    """Samples in order, decoded up to ``depth`` ahead by ``pool`` (errors are yielded,
    not raised); without a pool, each is read when asked for."""

    def load(pos: int) -> Sample | DatasetError:
        try:
            return dataset.load(pos)
        except DatasetError as exc:
            return exc

    loaded = ordered_map(load, positions, workers=0 if pool is None else 1, depth=depth, pool=pool)
    try:
        yield from zip(positions, loaded, strict=True)
    finally:
        loaded.close()


def size_batches(stream: Iterator[Item], batch_size: int) -> Iterator[list[Item]]:
    """Consecutive items grouped into batches of at most ``batch_size`` images of equal
    size (errors alone)."""
    batch: list[Item] = []
    for pos, item in stream:
        if isinstance(item, DatasetError):
            if batch:
                yield batch
                batch = []
            yield [(pos, item)]
            continue
        shape = batch[0][1].image.shape if batch else None  # type: ignore[union-attr]
        if batch and (len(batch) >= batch_size or shape != item.image.shape):
            yield batch
            batch = []
        batch.append((pos, item))
    if batch:
        yield batch


def label_positions(
    dataset: SegmentationDataset,
    todo: list[int],
    *,
    manifest_path: Path,
    compute: Callable[[list[tuple[int, Sample]]], list[ImageResult]],
    write: Callable[[ImageResult], dict[str, Any]],
    bar: Progress,
    num_workers: int,
    batch_size: int,
) -> tuple[int, int]:
    """Label the dataset positions ``todo``, appending one manifest record per image to
    ``manifest_path`` in order.

    Args:
        dataset: the reader; an unreadable sample is raised under its ``on_error="raise"``,
            else logged and recorded with its ``error``.
        todo: positions to label, in order.
        manifest_path: this process's manifest file.
        compute: labels one batch of ``(position, sample)`` (the main thread).
        write: writes one result's files and returns its manifest record (write threads).
        bar: progress, one step per image (closed here).
        num_workers: decode and write threads each (``0``: all in the main thread).
        batch_size: images per batch.

    Returns:
        ``(processed, failed)``: images labelled and bad input files skipped. On an
        error, every image whose files are in place is kept in the manifest first.
    """
    processed = failed = 0
    read_pool = (
        ThreadPoolExecutor(num_workers, thread_name_prefix="lb-decode") if num_workers else None
    )
    write_pool = (
        ThreadPoolExecutor(num_workers, thread_name_prefix="lb-write") if num_workers else None
    )
    manifest = ManifestWriter(manifest_path)
    pending: deque[Future | dict[str, Any]] = deque()
    max_pending = 2 * max(1, num_workers) + batch_size

    def finish(item: Future | dict[str, Any]) -> None:
        nonlocal processed
        record = item.result() if isinstance(item, Future) else item
        manifest.append(record)
        if "error" not in record:
            processed += 1
        bar.update(1)

    def drain(block_until: int) -> None:
        while pending and (
            len(pending) > block_until or not isinstance(pending[0], Future) or pending[0].done()
        ):
            finish(pending.popleft())

    def submit(fn: Callable[[], dict[str, Any]]) -> None:
        if write_pool is None:
            pending.append(fn())
        else:
            pending.append(write_pool.submit(fn))

    try:
        stream = prefetch_samples(
            dataset, todo, read_pool, depth=max(2, 2 * num_workers) + batch_size
        )
        for batch in size_batches(stream, batch_size):
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
            results = compute(batch)  # type: ignore[arg-type]
            for res in results:
                submit(lambda res=res: write(res))
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
