"""Callbacks and run-folder bookkeeping of the training stages.

* :class:`HistoryCallback` records every validation's metrics and learning rates; its
  state travels in checkpoints, so a resumed stage keeps the earlier history.
* Stage markers: ``<stage dir>/stage_done.json``, written atomically (temporary file +
  rename) when a stage completes; a re-run skips a stage that has one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L

#: Name of the file that marks a finished stage.
STAGE_MARKER = "stage_done.json"


class HistoryCallback(L.Callback):
    """Records, after each validation (not the sanity check), the epoch, global step,
    learning rates and every logged ``val/...`` metric.

    Args:
        stage: stage name stored with each entry (``"train"`` or ``"finetune"``).

    Attributes:
        history: list of ``{"stage", "epoch", "step", "lr": [...], "initial_lr": [...],
            <metric>: value}`` dicts, oldest first.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.history: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        entry: dict[str, Any] = {
            "stage": self.stage,
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
        }
        if trainer.optimizers:
            groups = trainer.optimizers[0].param_groups
            entry["lr"] = [float(g["lr"]) for g in groups]
            entry["initial_lr"] = [float(g.get("initial_lr", g["lr"])) for g in groups]
        for key, value in trainer.callback_metrics.items():
            if key.startswith("val/") or key.startswith("train/"):
                entry[key] = float(value)
        self.history.append(entry)

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file in the same folder and a rename, so
    readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_stage_marker(stage_dir: Path) -> dict[str, Any] | None:
    """The marker of a finished stage, or ``None`` when the stage has not finished.

    Its ``"best_checkpoint"`` is stored relative to ``stage_dir`` (so that a moved run
    folder still resumes; older markers hold absolute paths) and returned joined to it.
    """
    path = stage_dir / STAGE_MARKER
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if "best_checkpoint" in data:
        data["best_checkpoint"] = str(stage_dir / data["best_checkpoint"])
    return data


def write_stage_marker(stage_dir: Path, data: dict[str, Any]) -> None:
    """Mark a stage as finished (atomically), recording ``data`` (best checkpoint, score,
    history)."""
    write_json_atomic(stage_dir / STAGE_MARKER, data)
