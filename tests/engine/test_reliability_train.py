"""Training under bad input and interruption (issue 9, items 1 and 3), in process on the
toy dataset: skipped samples must be counted and listed in the run's report, and a
stage killed while it wrote a log file must leave no empty file once resumed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from benchmarks.common.layouts.toydata import make_toy_dataset
from labelbridge.config.base import validate_config
from labelbridge.config.train import TrainConfig
from labelbridge.engine.train import run_training


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.ERROR)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def toy_config(root: Path, out: Path, **changes: Any) -> TrainConfig:
    data: dict[str, Any] = {
        "taxonomy": str(root / "taxonomy.yaml"),
        "datasets": [{"name": "folder", "root": str(root), "split": "train"}],
        "val": [{"name": "folder", "root": str(root), "split": "val", "label": "toy"}],
        "model": {"spec": "tiny"},
        "batch_size": 2,
        "steps_per_epoch": 2,
        "epochs": 2,
        "num_workers": 0,
        "augment": {"enabled": False},
        "finetune": {"enabled": False},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
        },
        "output": str(out),
    }
    data.update(changes)
    return validate_config(TrainConfig, data)


def test_training_lists_skipped_samples_in_its_report(tmp_path: Path) -> None:
    """Samples skipped under on_error: skip (also in loader workers) reach metrics.json."""
    root = make_toy_dataset(tmp_path / "toy", splits={"train": 4, "val": 2})
    bad = root / "images" / "train" / "s001.png"
    bad.write_bytes(bad.read_bytes()[:40])
    datasets = [{"name": "folder", "root": str(root), "split": "train", "on_error": "skip"}]
    run_training(toy_config(root, tmp_path / "run", datasets=datasets, epochs=1))
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert str(bad) in json.dumps(report.get("skipped", []))


class Crash(L.Callback):
    """Raises once the global step reaches ``at`` (a stand-in for SIGKILL)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step >= self.at:
            raise KeyError("simulated kill")


def test_log_file_emptied_by_a_kill_is_rewritten_on_resume(tmp_path: Path) -> None:
    """A zero-byte hparams.yaml left by a kill is removed and rewritten on resume."""
    root = make_toy_dataset(tmp_path / "toy", splits={"train": 4, "val": 2})
    cfg = toy_config(root, tmp_path / "run")
    with pytest.raises(KeyError, match="simulated kill"):
        run_training(cfg, callbacks=[Crash(at=3)])  # after epoch 0's checkpoint
    hparams = tmp_path / "run" / "train" / "logs" / "tensorboard" / "hparams.yaml"
    assert hparams.stat().st_size > 0
    hparams.write_bytes(b"")  # what a kill in the middle of writing it leaves
    run_training(cfg)
    empty = [
        p.relative_to(tmp_path)
        for p in (tmp_path / "run").rglob("*")
        if p.is_file() and p.stat().st_size == 0
    ]
    assert empty == []
