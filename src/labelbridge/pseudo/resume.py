"""Resuming into a pseudo-label folder: the settings that must match, and the images
still to do.

A folder's ``pseudo_labels.yaml`` records the settings it was made with; a run with other
settings (teacher checksum, mapping, TTA, priors, outputs) is refused instead of being
mixed in. An image is done when its manifest record and its files agree (and its preview
exists where one is due).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labelbridge.data.pseudo_folder import INFO_FILE, preview_relpath
from labelbridge.errors import ConfigError
from labelbridge.files import write_bytes_atomic
from labelbridge.pseudo.manifest import read_manifests, verify_outputs

#: Keys of ``pseudo_labels.yaml`` that must match to resume into an existing folder.
FINGERPRINT_KEYS = ("taxonomy_def", "ontology", "dataset", "teacher", "tta", "priors", "outputs")


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


def prepare_folder(folder: Path, settings: dict[str, Any]) -> None:
    """Write ``settings`` as ``folder``'s ``pseudo_labels.yaml``, after checking that a
    settings file already there agrees on every :data:`FINGERPRINT_KEYS` entry.

    Raises:
        ConfigError: the existing file is unreadable or holds other settings.
    """
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
        diffs = [k for k in FINGERPRINT_KEYS if _fingerprint(old, k) != _fingerprint(settings, k)]
        if diffs:
            raise ConfigError(
                f"{info}: this folder holds pseudo-labels made with other settings "
                f"(differing: {', '.join(diffs)}); choose another output folder or delete it"
            )
    text = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True)
    write_bytes_atomic(info, text.encode("utf-8"))


def positions_to_do(
    folder: Path, keys: list[str], positions: list[int], previews: set[int]
) -> list[int]:
    """The ``positions`` (indices into ``keys``) whose manifest record and files in
    ``folder`` do not agree, or whose due preview is missing."""
    done = read_manifests(folder)
    todo = []
    for p in positions:
        needs_preview = p in previews and not (folder / preview_relpath(keys[p])).is_file()
        if needs_preview or not verify_outputs(done.get(keys[p], {}), folder):
            todo.append(p)
    return todo
