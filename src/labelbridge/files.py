"""Atomic, deterministic output files: the one module that moves files into place.

Every file is written to a temporary name in the same folder (:func:`atomic_output`),
flushed and ``fsync``-ed, then moved into place with :func:`os.replace`, so a kill at any
moment leaves either the old file, the new file, or nothing, never a partial one.
Temporary names carry the host and process id; :func:`remove_stale_temp_files` deletes
those left by processes that no longer run.

Encodings are deterministic (same array -> same bytes): PNG with a fixed compression
level, ``.npz`` archives with fixed member timestamps.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import socket
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from labelbridge.errors import UserError

log = logging.getLogger(__name__)

#: Suffix of temporary files (``.<name>.<host>.<pid>.<n>.lbtmp``).
TEMP_SUFFIX = ".lbtmp"
#: PNG zlib level used for every label file (fixed for byte-identical outputs).
PNG_COMPRESS_LEVEL = 6
#: Member timestamp of ``.npz`` archives (the ZIP epoch), for byte-identical outputs.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

_counter = itertools.count()
_HOST = socket.gethostname().replace(".", "_") or "host"


class OutputWriteError(UserError):
    """An output file could not be written (disk full, permissions); finished images are
    kept in the manifest and skipped on the next run."""


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's contents; of a folder (a Hub model folder), the SHA-256 of
    the sorted lines ``<relative path> <file digest>`` of the files under it, hidden ones
    left out."""
    path = Path(path)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts)
        )
        lines = "".join(f"{p.relative_to(path).as_posix()} {sha256_file(p)}\n" for p in files)
        return sha256_bytes(lines.encode("utf-8"))
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _temp_path(path: Path) -> Path:
    return path.parent / f".{path.name}.{_HOST}.{os.getpid()}.{next(_counter)}{TEMP_SUFFIX}"


def fsync_dir(folder: Path) -> None:
    """``fsync`` a folder so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _raise_write_error(path: Path, exc: OSError) -> None:
    if exc.errno == errno.ENOSPC:
        raise OutputWriteError(
            f"{path}: no space left on device while writing output files; free some space "
            "and run the same command again (finished files are kept and skipped)"
        ) from exc
    raise OutputWriteError(f"{path}: cannot write output file: {exc}") from exc


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


@contextmanager
def atomic_output(path: str | Path, *, text: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; when the block ends, flush,
    ``fsync``, move it onto ``path`` and ``fsync`` the folder. If the block raises, the
    temporary file is removed and ``path`` is left as it was. The one way labelbridge
    writes a file that must never be seen half-written (labels, checkpoints, markers,
    configs, reports); parent folders are created.

    Args:
        path: the target file.
        text: open in text mode (UTF-8) instead of binary.

    Raises:
        OutputWriteError: an ``OSError`` while writing (disk full, permissions), naming
            ``path``; no temporary or partial file is left behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _raise_write_error(path.parent, exc)
    tmp = _temp_path(path)
    try:
        with open(tmp, "w" if text else "wb", encoding="utf-8" if text else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        _raise_write_error(path, exc)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(path: str | Path, data: bytes) -> str:
    """Write ``data`` to ``path`` through :func:`atomic_output`.

    Returns:
        the hex SHA-256 of ``data``.

    Raises:
        OutputWriteError: the write failed (``ENOSPC`` and friends).
    """
    with atomic_output(path) as fh:
        fh.write(data)
    return sha256_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path, text=True) as fh:
        fh.write(text)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON (non-JSON values as ``str``) plus a newline to
    ``path`` through :func:`atomic_output`."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def copy_file_atomic(src: str | Path, dst: str | Path) -> None:
    """Copy ``src``'s bytes to ``dst`` through :func:`atomic_output`."""
    with open(src, "rb") as source, atomic_output(dst) as fh:
        shutil.copyfileobj(source, fh, length=1 << 20)


def encode_label_png(labels: np.ndarray) -> bytes:
    """``(H, W)`` uint8 train ids -> PNG bytes (mode L), deterministic."""
    arr = np.asarray(labels)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise ValueError(f"label maps must be (H, W) uint8, got {arr.shape} {arr.dtype}")
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def encode_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """Compressed ``.npz`` bytes readable by :func:`numpy.load`, deterministic."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (``os.kill(pid, 0)``; one of another
    user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: str | Path) -> int:
    """Delete temporary files under ``folder`` left by dead processes of this host.

    Returns:
        the number of files removed.
    """
    removed = 0
    for tmp in Path(folder).rglob(f"*{TEMP_SUFFIX}"):
        parts = tmp.name[: -len(TEMP_SUFFIX)].split(".")
        if len(parts) < 4:
            continue
        host, pid_text = parts[-3], parts[-2]
        if host != _HOST or not pid_text.isdigit():
            continue
        if int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    if removed:
        log.info("removed %d temporary files left by interrupted runs in %s", removed, folder)
    return removed
