"""The manifest: one JSON line per finished image, appended after its files are in place.

A dataset's output folder holds ``manifest.jsonl`` (single process) and/or shard parts
``manifest.<i>-of-<n>.jsonl``; readers take the union (by key, later files win).
A line is appended with one ``write`` + flush + ``fsync``; a line torn by a kill has no
final newline and is dropped (and cut off before the next append). Any other malformed
line is an error naming the file and line.

Line fields (finished image)::

    {"key": "train/0001TP_006690", "input": "/data/camvid/train/0001TP_006690.jpg",
     "output": "train/0001TP_006690.png",
     "sha256": {"train/0001TP_006690.png": "ab12..."},      # every file written for it
     "height": 360, "width": 480,
     "pixels": {"road": 51234, ..., "ignore": 12},          # non-zero classes
     "changed": {"sidewalk": 310, ...},                     # pixels the priors changed
     "confidence_sum": {"road": 48000.5, ...},
     "fallbacks": [{"scale": 2.0, "level": "cpu", "error": "..."}]}   # only when any

A bad input file skipped under ``on_error: skip`` gets ``{"key", "input", "error"}``; it
is retried on the next run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labelbridge.errors import UserError
from labelbridge.files import OutputWriteError, fsync_dir, sha256_file, write_bytes_atomic

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
_PART_RE = re.compile(r"^manifest\.(\d+)-of-(\d+)\.jsonl$")


class ManifestError(UserError):
    """A manifest file is malformed (not a torn last line: real corruption)."""


def manifest_name(index: int = 0, count: int = 1) -> str:
    """``manifest.jsonl`` for one process, ``manifest.<i>-of-<n>.jsonl`` for shard ``i`` of ``n``."""
    return MANIFEST_NAME if count == 1 else f"manifest.{index}-of-{count}.jsonl"


def manifest_files(folder: str | Path) -> list[Path]:
    """The manifest and its shard parts in ``folder``: the merged file first, parts sorted."""
    folder = Path(folder)
    parts = sorted(
        (p for p in folder.glob("manifest.*-of-*.jsonl") if _PART_RE.match(p.name)),
        key=lambda p: tuple(int(g) for g in _PART_RE.match(p.name).groups()[::-1]),  # type: ignore[union-attr]
    )
    main = folder / MANIFEST_NAME
    return ([main] if main.is_file() else []) + parts


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Records of one manifest file; a torn last line (no final newline) is dropped.

    Raises:
        ManifestError: a complete line that is not a JSON object with a ``key``.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    if lines and lines[-1] != "":
        log.warning("%s: dropping a torn last line (interrupted write)", path)
    records = []
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"{path}:{number}: malformed manifest line ({exc.msg}); delete the line to redo that image"
            ) from None
        if not isinstance(rec, dict) or "key" not in rec:
            raise ManifestError(f"{path}:{number}: manifest line has no 'key'")
        records.append(rec)
    return records


def read_manifests(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Union of the manifest files in ``folder``: ``{key: record}`` (later lines win)."""
    out: dict[str, dict[str, Any]] = {}
    for path in manifest_files(folder):
        for rec in read_manifest(path):
            out[rec["key"]] = rec
    return out


def is_finished(record: dict[str, Any] | None) -> bool:
    """Whether a record describes a finished image (not a skipped bad file)."""
    return bool(record) and "error" not in record and bool(record.get("sha256"))


def verify_outputs(record: dict[str, Any], folder: str | Path) -> bool:
    """Whether every file listed in ``record['sha256']`` exists under ``folder`` with that checksum."""
    if not is_finished(record):
        return False
    folder = Path(folder)
    for rel, digest in record["sha256"].items():
        path = folder / rel
        if not path.is_file():
            return False
        try:
            if sha256_file(path) != digest:
                log.info("%s: checksum differs from the manifest; redoing it", path)
                return False
        except OSError:
            return False
    return True


def repair_torn_tail(path: str | Path) -> int:
    """Cut a torn last line (bytes after the last newline) off a manifest file.

    Returns:
        number of bytes removed.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    with open(path, "rb+") as fh:
        data = fh.read()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    log.warning("%s: removed a torn last line of %d bytes", path, len(data) - keep)
    return len(data) - keep


class ManifestWriter:
    """Appends records to one manifest file (thread-safe), durably.

    Args:
        path: the manifest file; created if missing, a torn tail is cut first.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._lock = threading.Lock()
        self._fh = open(self.path, "ab")
        fsync_dir(self.path.parent)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line; returns after it is on disk.

        Raises:
            OutputWriteError: the write failed (e.g. disk full); the torn bytes are cut
                off again so the file stays a valid manifest.
        """
        line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            start = self._fh.tell()
            try:
                self._fh.write(line)
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as exc:
                try:
                    self._fh.truncate(start)
                    self._fh.flush()
                except OSError:
                    pass
                raise OutputWriteError(
                    f"{self.path}: cannot append to the manifest: {exc}"
                ) from exc

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge_manifests(folder: str | Path, keys: Iterable[str]) -> Path | None:
    """Write the union of all manifest files as ``manifest.jsonl`` (in ``keys`` order) and
    remove the shard parts, if the union covers every key with a finished record.

    Returns:
        the merged file, or ``None`` when some key is not finished yet.
    """
    folder = Path(folder)
    union = read_manifests(folder)
    ordered = []
    for key in keys:
        rec = union.get(key)
        if not is_finished(rec):
            return None
        ordered.append(rec)
    parts = [p for p in manifest_files(folder) if p.name != MANIFEST_NAME]
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in ordered)
    target = folder / MANIFEST_NAME
    write_bytes_atomic(target, text.encode("utf-8"))
    for part in parts:
        try:
            part.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputWriteError(f"{part}: cannot remove merged manifest part: {exc}") from exc
    return target
