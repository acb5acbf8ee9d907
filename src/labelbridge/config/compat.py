"""Settings recorded by earlier versions, compared with today's: a finished run or a
pipeline stage recorded before a key was renamed or added is the same settings today, so
it resumes instead of being refused or redone.

* Dataset entries read as they are spelt their reader ``name`` (today ``reader``).
* Keys added since, at the value that keeps the older meaning, were absent
  (:data:`ADDED_KEYS`).
"""

from __future__ import annotations

from typing import Any

#: ``(parent key or None for the top level, key, value meaning "as before")``.
ADDED_KEYS: tuple[tuple[str | None, str, Any], ...] = (
    ("labels", "soft", False),
    ("labels", "partial", None),
    (None, "partial_loss", {"weight": 1.0, "void_option": "allowed"}),
    (
        "trainer",
        "loggers",
        [{"name": "tensorboard", "options": {}}, {"name": "csv", "options": {}}],
    ),
    ("trainer", "callbacks", []),
)


def with_reader_key(data: Any, *, older: bool = False) -> Any:
    """A dumped config (JSON-able data) with its read-as-it-is dataset entries spelt the
    current way (``reader``), or, with ``older``, the way configs recorded before
    ``reader`` was the one key spelt them (``name``), so records of earlier runs compare
    equal to today's settings. An entry is a mapping with a ``split``; one that has both
    keys (an entry with an output folder) is left as it is."""
    if isinstance(data, list):
        return [with_reader_key(v, older=older) for v in data]
    if not isinstance(data, dict):
        return data
    out = {k: with_reader_key(v, older=older) for k, v in data.items()}
    old, new = ("reader", "name") if older else ("name", "reader")
    if "split" in out and old in out and new not in out:
        out[new] = out.pop(old)
    return out


def without_added_keys(data: Any, parent: str | None = None) -> Any:
    """A dumped config without the :data:`ADDED_KEYS` that hold their "as before" value."""
    if isinstance(data, list):
        return [without_added_keys(v, parent) for v in data]
    if not isinstance(data, dict):
        return data
    drop = {
        key for where, key, value in ADDED_KEYS if where == parent and data.get(key, ...) == value
    }
    return {k: without_added_keys(v, k) for k, v in data.items() if k not in drop}


def as_recorded_before(data: Any) -> list[Any]:
    """The forms earlier versions recorded a dumped config in (for their fingerprints):
    without the added keys, and that with the reader spelt ``name``."""
    bare = without_added_keys(data)
    return [bare, with_reader_key(bare, older=True)]


def comparable(data: Any) -> Any:
    """A recorded or dumped config in the one form both compare in: today's reader key,
    added keys at their "as before" value left out."""
    return without_added_keys(with_reader_key(data))
