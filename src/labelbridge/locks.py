"""Lock files: one process at a time works on a piece of output (e.g. one shard of a
pseudo-label folder).

:func:`claim_lock` creates the lock file with ``O_CREAT | O_EXCL`` (atomic, on NFS v3+
too) holding one JSON line ``{"host", "pid", "started", ...details}``, and removes it
when the block ends, normally or by an exception (the CLI turns SIGINT and SIGTERM into
exceptions). A ``kill -9`` or a failed node leaves the file behind; the next claimant
judges it:

- holder on this host and alive (``os.kill(pid, 0)``): refused with
  :class:`LockHeldError`, which names the file, the holder and what to do;
- holder on this host, process gone: stale, taken over with a warning;
- holder on another host: this host cannot tell whether it still runs, so refused,
  unless the caller passes ``force=True`` (``--force-unlock``), which takes it over with
  a warning;
- still empty or unparsable after a second (its holder was killed between creating and
  writing it): stale, taken over with a warning.

A stale file is removed only while it still holds the bytes that were judged, then the
claim is made again with ``O_EXCL``: of two processes taking over at once, one wins and
the other sees the winner's lock. With ``wait``, a claimant waits that long for a held
lock to be released before refusing (for short sections processes take turns at).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labelbridge.errors import UserError
from labelbridge.files import OutputWriteError, fsync_dir, pid_alive

log = logging.getLogger(__name__)

#: Suffix of lock files.
LOCK_SUFFIX = ".lock"
#: How long an unparsable lock file may be in the middle of being written.
_SETTLE_SECONDS = 1.0
#: Pause between two looks at a held lock (``wait``).
_POLL_SECONDS = 0.1
_HOST = socket.gethostname() or "localhost"


class LockHeldError(UserError):
    """Another process holds the lock file (or may: it runs on another host)."""


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if not isinstance(record.get("pid"), int) or not isinstance(record.get("host"), str):
        return None
    return record


def _read_holder(path: Path) -> tuple[bytes, dict[str, Any] | None] | None:
    """The lock file's bytes and holder record (``None``: unparsable after waiting
    :data:`_SETTLE_SECONDS`), or ``None`` when the file is gone."""
    deadline = time.monotonic() + _SETTLE_SECONDS
    while True:
        data = _read(path)
        if data is None:
            return None
        holder = _parse(data)
        if holder is not None or time.monotonic() >= deadline:
            return data, holder
        time.sleep(0.05)


def _describe(holder: dict[str, Any]) -> str:
    return (
        f"process {holder['pid']} on host {holder['host']} "
        f"(started {holder.get('started', 'at an unknown time')})"
    )


def _stale_reason(path: Path, holder: dict[str, Any] | None, *, what: str, force: bool) -> str:
    """Why the lock held by ``holder`` may be taken over.

    Raises:
        LockHeldError: its holder runs (this host), or may run (another host, no ``force``).
    """
    if holder is None:
        return "the file holds no holder record (its process was killed while creating it)"
    who = _describe(holder)
    if holder["host"] == _HOST:
        if holder["pid"] != os.getpid() and not pid_alive(holder["pid"]):
            return f"{who} no longer runs"
        raise LockHeldError(
            f"{path}: {what} is being worked on by {who}; two processes must not work on "
            "it at once. Wait for that process to finish or stop it; if that process id now "
            f"belongs to another program, delete {path}"
        )
    if force:
        return f"{who} runs on another host and --force-unlock was given"
    raise LockHeldError(
        f"{path}: {what} is claimed by {who}; this is host {_HOST}, which cannot tell "
        "whether that process still runs. If it does not (its job ended, its node failed), "
        f"delete {path} or run again with --force-unlock"
    )


def _remove_if_unchanged(path: Path, judged: bytes) -> None:
    if _read(path) == judged:
        path.unlink(missing_ok=True)


def _create(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; ``False`` when it does.

    Raises:
        OutputWriteError: the file cannot be created or written (permissions, disk full).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise OutputWriteError(f"{path}: cannot create lock file: {exc}") from exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise OutputWriteError(f"{path}: cannot write lock file: {exc}") from exc
    os.close(fd)
    fsync_dir(path.parent)
    return True


def _acquire(path: Path, data: bytes, *, what: str, force: bool, wait: float) -> None:
    deadline = time.monotonic() + wait
    takeovers = 0
    while not _create(path, data):
        found = _read_holder(path)
        if found is None:  # released in the meantime
            continue
        judged, holder = found
        try:
            reason = _stale_reason(path, holder, what=what, force=force)
        except LockHeldError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_POLL_SECONDS)
            continue
        if takeovers == 3:
            raise LockHeldError(
                f"{path}: other processes keep claiming {what} at the same moment; run again "
                "to see which process holds it"
            )
        takeovers += 1
        log.warning("%s: taking over the lock of %s: %s", path, what, reason)
        _remove_if_unchanged(path, judged)


def _release(path: Path, data: bytes) -> None:
    current = _read(path)
    if current is None:
        log.warning("%s: the lock file was deleted while this process held it", path)
        return
    if current != data:
        log.warning(
            "%s: the lock file now names another holder (taken over with --force-unlock?); "
            "leaving it",
            path,
        )
        return
    try:
        path.unlink()
    except OSError as exc:
        log.warning("%s: cannot remove the lock file: %s", path, exc)


@contextmanager
def claim_lock(
    path: str | Path,
    *,
    what: str,
    details: dict[str, Any] | None = None,
    force: bool = False,
    wait: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Hold the lock file ``path`` for the duration of the block (rules: module doc).

    Args:
        path: the lock file (its folder must exist).
        what: names the locked work in messages, e.g. ``"shard 0/2 of out/cv"``.
        details: more JSON fields for the lock file (e.g. ``{"shard": "0/2"}``).
        force: take over a lock held by a process on another host.
        wait: seconds to wait for a held lock to be released before refusing (``0``:
            refuse at once), for short sections that processes take turns at.

    Yields:
        the record written to the lock file.

    Raises:
        LockHeldError: another process holds the lock (named, with what to do).
        OutputWriteError: the lock file cannot be created.

    Example:
        >>> with claim_lock(folder / "manifest.jsonl.lock", what="out/cv"):  # doctest: +SKIP
        ...     label_the_images()
    """
    path = Path(path)
    record = {
        "host": _HOST,
        "pid": os.getpid(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(details or {}),
    }
    data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    _acquire(path, data, what=what, force=force, wait=wait)
    try:
        yield record
    finally:
        _release(path, data)
