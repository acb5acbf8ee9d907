"""Long work says how far it is: a bar in a terminal, timed log lines with an ETA
elsewhere (batch logs), and a training run without noise on stderr or stdout."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labelbridge import progress as progress_mod
from labelbridge.progress import INTERVAL_ENV, Progress, format_duration, line_interval


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(progress_mod.time, "monotonic", fake)
    monkeypatch.setattr(progress_mod, "stderr_is_terminal", lambda: False)
    return fake


def test_lines_every_interval_with_rate_and_eta(
    clock: _Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "30")
    with caplog.at_level(logging.INFO, logger="labelbridge.progress"):
        with Progress(total=10, desc="evaluate", initial=2) as bar:
            clock.now += 10
            bar.update(2)  # 10 s after the start: no line yet
            assert caplog.messages == []
            clock.now += 30
            bar.update(2)  # 4 done in 40 s: 0.1 img/s, 4 left -> 40 s
            clock.now += 5
            bar.update(1)  # 5 s after the last line: none
    assert caplog.messages == [
        "evaluate: 6/10 img (60%), 40s elapsed, 0.1 img/s, about 40s left",
        "evaluate: 7/10 img (70%), 45s elapsed, 0.111 img/s, about 27s left",
    ]


def test_track_counts_items_and_closes_once(
    clock: _Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="labelbridge.progress"):
        bar = Progress(total=3, desc="suggest", unit="img")
        for _ in bar.track(["a", "b", "c"]):
            clock.now += 60
        bar.close()
    assert bar.n == 3
    assert caplog.messages[-1] == "suggest: 3/3 img (100%), 3m00s elapsed, 0.0167 img/s"
    assert len([m for m in caplog.messages if "3/3" in m]) == 1


def test_disabled_progress_says_nothing(clock: _Clock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="labelbridge.progress"):
        with Progress(total=3, desc="x", enabled=False) as bar:
            clock.now += 100
            bar.update(3)
    assert caplog.messages == []


def test_a_terminal_gets_a_tqdm_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "stderr_is_terminal", lambda: True)
    with Progress(total=4, desc="prepare", unit="file") as bar:
        bar.update(4)
        assert bar._bar is not None and bar._bar.n == 4


@pytest.mark.parametrize("raw", ["0", "-5", "soon"])
def test_a_bad_interval_is_refused_naming_the_variable(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INTERVAL_ENV, raw)
    with pytest.raises(ValueError, match=rf"\$LABELBRIDGE_PROGRESS_INTERVAL='{raw}'"):
        line_interval()


def test_durations_read_as_people_write_them() -> None:
    assert [format_duration(s) for s in (0.4, 42, 185, 7620, float("inf"), -1)] == [
        "0s",
        "42s",
        "3m05s",
        "2h07m",
        "?",
        "?",
    ]


def test_train_without_a_terminal_logs_progress_and_no_noise(tmp_path: Path) -> None:
    """A batch job's log: progress lines with ETA and each validation's score on stderr;
    no model table on stdout, no warnings about FLOPs, LeafSpec, logging intervals or
    worker counts (the shipped configs ask for 4 workers; 2-core machines have 2)."""
    from benchmarks.common.layouts.toydata import make_toy_dataset

    make_toy_dataset(tmp_path / "toy", splits={"train": 8, "val": 2})
    cfg = {
        "taxonomy": "toy/taxonomy.yaml",
        "datasets": [{"reader": "folder", "root": "toy", "split": "train"}],
        "val": [{"reader": "folder", "root": "toy", "split": "val", "label": "toy"}],
        "model": {"spec": "tiny"},
        "batch_size": 4,
        "steps_per_epoch": 2,
        "epochs": 2,
        "num_workers": max(4, (os.cpu_count() or 1) + 1),
        "finetune": {"enabled": False},
        "trainer": {"accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0},
        "output": "run",
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", INTERVAL_ENV: "0.001"}
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(
        [shutil.which("labelbridge") or "labelbridge", "train", "train.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = proc.stderr
    assert "train: model tiny, " in err and " parameters (" in err
    assert "train: epoch 1/2, step 1/4 (25%), loss " in err and " left" in err
    assert "train: epoch 2/2 validated: val/select/mIoU 0." in err
    assert "usable CPUs: loading with" in err
    for noise in ("FLOPs", "LeafSpec", "log_every_n_steps", "worker processes", "Warning"):
        assert noise not in err + proc.stdout, noise
    assert "┏" not in proc.stdout and "Params" not in proc.stdout
    # Lightning's hparams.yaml files hold plain types (no python/tuple tags)
    saved = sorted((tmp_path / "run").rglob("hparams.yaml"))
    assert saved and all(yaml.safe_load(p.read_text())["augment"]["crop"] is None for p in saved)
    assert yaml.safe_load(saved[0].read_text())["augment"]["scale_range"] == [0.5, 2.0]
