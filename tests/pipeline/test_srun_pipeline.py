"""The pipeline under ``srun`` without a process group: a task whose pseudo-label shard
finished early waits for the other shards before its student stage, and only task 0
records the run's state.

Two tasks (``SLURM_PROCID`` 0 and 1 of 2) run the real pipeline runner and
pseudo-labelling (:mod:`srun_pipeline_task`); task 1's shard starts late. Before, task 0
went on to its student stage while task 1 was still labelling: the student's datasets
missed task 1's images (with ``on_error: raise`` the task stopped with "2 of 4 samples
have no pseudo-label"), and task 0 recorded the stage done in ``state.json`` meanwhile.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_pipeline import _config, _run_recording_configs

from benchmarks.common.reliability.pseudo_cases import tiny_checkpoint
from labelbridge.config import dump_config
from srun_env import slurm_task_env
from test_sharding import srun_task

TASK = Path(__file__).with_name("srun_pipeline_task.py")
#: How late the slow task's shard starts (seconds).
SLOW_SECONDS = 4.0
PSEUDO_STAGE = "iter1/pseudo_priors"


def _given_teacher_config(tmp_path: Path, world_root: Path):
    """The pipeline of ``test_pipeline`` with a given tiny teacher and one arm (no teacher
    training: no process group exists when the pseudo-labels are made)."""
    ckpt = tiny_checkpoint(tmp_path / "teacher.ckpt", str(world_root / "source" / "taxonomy.yaml"))
    return _config(
        tmp_path / "run",
        world_root,
        teacher={"checkpoint": str(ckpt)},
        student={"model": {"spec": "tiny"}, "epochs": 1},
        pseudo={
            "arms": ["priors"],
            "tta": {"flip": False, "scales": [1.0]},
            "device": "cpu",
            "num_workers": 0,
            "threads": 1,
            "outputs": {"previews": 0},
        },
    )


def test_fast_task_waits_for_the_slow_shard_before_its_student(tmp_path: Path, tiny_world) -> None:
    cfg_path, events = tmp_path / "pipeline.yaml", tmp_path / "events.jsonl"
    dump_config(_given_teacher_config(tmp_path, tiny_world.root), cfg_path)
    procs = [
        subprocess.Popen(
            [sys.executable, str(TASK), str(cfg_path), str(events), str(SLOW_SECONDS * task)],
            env=slurm_task_env(task, 2),
            stderr=subprocess.PIPE,
            text=True,
        )
        for task in range(2)
    ]
    errs = [proc.communicate(timeout=120)[1] for proc in procs]
    for proc, err in zip(procs, errs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    seen = [json.loads(line) for line in events.read_text().splitlines()]

    def at(task: int, event: str) -> dict:
        (found,) = [e for e in seen if e["task"] == task and e["event"] == event]
        return found

    slow_done = at(1, "pseudo_done")["time"]
    assert at(0, "pseudo_done")["time"] < slow_done  # task 0's shard did finish first
    assert at(0, "student_start")["time"] >= slow_done
    # both students see every image: 4 source images, 4 of each extra
    assert at(0, "student_datasets")["sizes"] == [4, 4, 4]
    assert at(1, "student_datasets")["sizes"] == [4, 4, 4]
    assert "shard 0/2 is done; waiting up to 3600 s for shard 1/2 (2 of 2 images to do" in errs[0]
    # the stage was recorded done (by task 0 alone) after the slow shard had finished
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["stages"][PSEUDO_STAGE]["status"] == "done"
    assert state["stages"][PSEUDO_STAGE]["finished"] >= slow_done
    for extra in ("extra_a", "extra_b"):
        report = json.loads((tmp_path / "run" / PSEUDO_STAGE / extra / "report.json").read_text())
        assert (report["images"]["total"], report["images"]["remaining"]) == (4, 0)


def test_only_task_zero_records_the_run(
    tmp_path: Path, tiny_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every task runs every stage; task 0 alone writes state, configs and results (before,
    each task wrote ``state.json`` from its own view, and ``results.json`` that the CLI of
    another task read back)."""
    run = tmp_path / "run"
    cfg = _config(run, tiny_world.root, targets=["partial"])  # no pseudo-labels to wait for
    stages = ["teacher", "evaluate/teacher", "iter1/student_partial"]
    stages.append("evaluate/iter1/student_partial")

    def files() -> list[str]:
        return sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())

    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    srun_task(monkeypatch, 1, 2)
    result, _ = _run_recording_configs(cfg, run)
    assert result.executed == stages
    assert files() == ["iter1/student_partial/final.ckpt", "teacher/final.ckpt"]  # the stages'

    srun_task(monkeypatch, 0, 2)
    result, _ = _run_recording_configs(cfg, run)
    assert result.executed == stages  # task 1 recorded nothing that task 0 could skip
    assert files() == [
        "iter1/student_partial/final.ckpt",
        "iter1/student_partial/train_config.yaml",
        "pipeline.yaml",
        "results.json",
        "results.md",
        "state.json",
        "teacher/final.ckpt",
        "teacher/train_config.yaml",
    ]
    state = json.loads((run / "state.json").read_text())
    assert {name: rec["status"] for name, rec in state["stages"].items()} == dict.fromkeys(
        stages, "done"
    )
