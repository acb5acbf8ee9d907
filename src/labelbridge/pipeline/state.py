"""The run folder's record of its stages: ``state.json`` and the config fingerprints
that decide whether a recorded stage may be reused."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from labelbridge.config.base import canonical_paths
from labelbridge.config.compat import as_recorded_before
from labelbridge.errors import ConfigError
from labelbridge.files import write_json_atomic

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_VERSION = 1
RESOLVED_CONFIG = "pipeline.yaml"


# --------------------------------------------------------------------------- state


def legacy_fingerprint(data: Any) -> str:
    """The fingerprint of runs made before paths were canonicalised (raw strings);
    still accepted so those runs resume."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(data: Any) -> str:
    """Short stable hash of JSON-able data (a stage's config); paths of existing files
    count by where they lead, not how they are spelt (relative or absolute)."""
    return legacy_fingerprint(canonical_paths(data))


def stage_fingerprint(stage_config: Any) -> str:
    """The fingerprint of a stage's config without its top-level ``output``: the stage's
    own folder (``<run_dir>/<stage>``) is its identity already, and it is created by the
    stage, so counting it would change the fingerprint between start and re-run."""
    if isinstance(stage_config, dict):
        stage_config = {k: v for k, v in stage_config.items() if k != "output"}
    return fingerprint(stage_config)


def earlier_fingerprints(stage_config: Any) -> set[str]:
    """Fingerprints earlier versions recorded for the same stage config (still accepted,
    so their runs resume): raw strings, paths canonicalised with ``output`` kept, and
    each of these and today's in the forms earlier versions recorded
    (:func:`~labelbridge.config.compat.as_recorded_before`)."""
    found: set[str] = set()
    for data in (stage_config, *as_recorded_before(stage_config)):
        found |= {legacy_fingerprint(data), stage_fingerprint(data)}
        if isinstance(data, dict) and "output" in data:
            rest = {k: v for k, v in data.items() if k != "output"}
            found.add(legacy_fingerprint({**canonical_paths(rest), "output": data["output"]}))
    return found


class RunState:
    """``<run_dir>/state.json``: ``{"version": 1, "stages": {name: record}}``.

    A record is ``{"status": "running" | "done", "fingerprint": str, "outputs": {...},
    "started": unix time, "finished": unix time}``. Every change is written atomically.

    Args:
        path: the state file.
        record: write changes to the file; ``False`` keeps them in memory (the other
            processes of a run started several times over, e.g. srun tasks: one process,
            rank 0, records the run's state).

    Raises:
        ConfigError: the file exists but is not a state file of this version.
    """

    def __init__(self, path: Path, *, record: bool = True) -> None:
        self.path = Path(path)
        self.record = record
        self.stages: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"{self.path}: unreadable run state ({exc}); remove it to start over"
                ) from None
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ConfigError(
                    f"{self.path}: not a labelbridge run state of version {STATE_VERSION}"
                )
            self.stages = dict(data.get("stages", {}))

    def save(self) -> None:
        """Write the state file (atomically); nothing where this process does not record."""
        if not self.record:
            return
        write_json_atomic(self.path, {"version": STATE_VERSION, "stages": self.stages})

    def is_done(self, name: str) -> bool:
        return self.stages.get(name, {}).get("status") == "done"

    def outputs(self, name: str) -> dict[str, Any]:
        return dict(self.stages.get(name, {}).get("outputs", {}))

    def start(self, name: str, fp: str) -> None:
        self.stages[name] = {
            "status": "running",
            "fingerprint": fp,
            "outputs": {},
            "started": time.time(),
        }
        self.save()

    def finish(self, name: str, outputs: dict[str, Any]) -> None:
        record = self.stages.setdefault(name, {})
        record.update(status="done", outputs=outputs, finished=time.time())
        self.save()
