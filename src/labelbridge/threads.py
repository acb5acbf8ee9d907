"""Ordered, bounded work in a thread pool: the one way labelbridge overlaps decoding,
conversion and counting with the main thread.

Threads pay where the work releases the GIL: Pillow's PNG/JPEG decoders, numpy's
element-wise kernels and torch operators do; pure-Python loops do not.

Example:
    >>> list(ordered_map(lambda x: x * x, range(5), workers=2))
    [0, 1, 4, 9, 16]
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers(limit: int = 4) -> int:
    """Threads for decode-bound work: the CPUs this process may use, at most ``limit``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(limit, cpus))


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    depth: int | None = None,
    pool: ThreadPoolExecutor | None = None,
    name: str = "lb-work",
) -> Iterator[R]:
    """``fn(item)`` for each item, in the items' order, computed up to ``depth`` ahead by
    ``workers`` threads (``0``: each computed in the caller's thread when asked for).

    ``items`` is consumed lazily, at most ``depth`` (default ``2 * workers``) ahead of
    the consumer, so memory stays bounded on long streams. An exception raised by ``fn``
    is raised to the consumer at that item's place; the work queued behind it is
    cancelled. A ``pool`` given is used (and left open); otherwise one is made and shut
    down when the iterator ends or is closed.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if workers == 0 and pool is None:
        for item in items:
            yield fn(item)
        return
    depth = max(1, depth if depth is not None else 2 * max(1, workers))
    own = pool is None
    executor = pool or ThreadPoolExecutor(workers, thread_name_prefix=name)
    ahead: deque[Future[R]] = deque()
    it = iter(items)
    try:
        for item in it:
            ahead.append(executor.submit(fn, item))
            if len(ahead) >= depth:
                break
        while ahead:
            fut = ahead.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                ahead.append(executor.submit(fn, nxt))  # type: ignore[arg-type]
            yield fut.result()
    finally:
        for fut in ahead:
            fut.cancel()
        if own:
            executor.shutdown(wait=True, cancel_futures=True)


_END = object()
