"""Where a process's shard comes from: ``--shard``, a torch.distributed group, torchrun's
variables, an srun task's variables, else everything; and which wins when several say."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from labelbridge.errors import ConfigError
from labelbridge.sharding import Shard, detect_shard, launcher_shard, local_rank, slurm_task

#: Variables of the launchers; every test starts without any of them.
LAUNCH_VARS = (
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_ID",
    "SLURM_LOCALID", "SLURM_JOB_ID",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)


def srun_task(monkeypatch: pytest.MonkeyPatch, procid: int, ntasks: int, step: str = "0") -> None:
    """The variables srun gives task ``procid`` of a step of ``ntasks`` tasks."""
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_STEP_ID", step)
    monkeypatch.setenv("SLURM_PROCID", str(procid))
    monkeypatch.setenv("SLURM_NTASKS", str(ntasks))


def torchrun(monkeypatch: pytest.MonkeyPatch, rank: int, world: int) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))


def test_nothing_set_is_everything() -> None:
    assert detect_shard() == Shard(0, 1)


def test_srun_task_gives_its_shard(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    srun_task(monkeypatch, 1, 2)
    with caplog.at_level(logging.INFO, logger="labelbridge.sharding"):
        assert detect_shard() == Shard(1, 2)
    assert "shard 1/2: from the srun task's SLURM_PROCID/SLURM_NTASKS" in caplog.text
    srun_task(monkeypatch, 3, 4, step="17")
    assert detect_shard() == Shard(3, 4)


def test_one_srun_task_is_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    srun_task(monkeypatch, 0, 1)
    assert detect_shard() == Shard(0, 1)
    assert slurm_task() == Shard(0, 1)


def test_sbatch_script_and_salloc_shell_are_not_shards(
    monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    # an sbatch script of a 4-task job: SLURM_PROCID=0 and SLURM_NTASKS=4, but no step
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "0")
    with caplog.at_level(logging.INFO, logger="labelbridge.sharding"):
        assert detect_shard() == Shard(0, 1)
    assert "not started by srun (no SLURM_STEP_ID)" in caplog.text
    # an salloc shell: SLURM_NTASKS only
    monkeypatch.delenv("SLURM_PROCID")
    assert detect_shard() == Shard(0, 1)
    assert slurm_task() is None


@pytest.mark.parametrize("step", ["4294967291", "4294967290", "4294967292", "batch"])
def test_special_slurm_steps_are_not_shards(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """The batch step, the interactive step (salloc's shell under use_interactive_step),
    the external step: one process each."""
    srun_task(monkeypatch, 0, 4, step=step)
    assert detect_shard() == Shard(0, 1)


def test_explicit_shard_wins_over_everything(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    srun_task(monkeypatch, 1, 2)
    torchrun(monkeypatch, 2, 3)
    with caplog.at_level(logging.INFO, logger="labelbridge.sharding"):
        assert detect_shard(Shard(0, 5)) == Shard(0, 5)
    assert "shard 0/5: given explicitly (--shard)" in caplog.text


def test_torchrun_wins_over_slurm_and_says_so(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    # one torchrun per node under srun (2 tasks), 4 workers each: rank 5 of 8
    srun_task(monkeypatch, 1, 2)
    torchrun(monkeypatch, 5, 8)
    with caplog.at_level(logging.INFO, logger="labelbridge.sharding"):
        assert detect_shard() == Shard(5, 8)
    assert "torchrun's RANK/WORLD_SIZE give shard 5/8, SLURM's" in caplog.text
    assert "give 1/2: using torchrun's" in caplog.text
    assert "shard 5/8: from torchrun's RANK/WORLD_SIZE" in caplog.text


def test_torchrun_and_slurm_agreeing_logs_no_conflict(
    monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    srun_task(monkeypatch, 1, 2)
    torchrun(monkeypatch, 1, 2)
    with caplog.at_level(logging.INFO, logger="labelbridge.sharding"):
        assert detect_shard() == Shard(1, 2)
    assert "using torchrun's" not in caplog.text


def test_one_process_torchrun_world_leaves_the_srun_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """``srun -n 2 torchrun --standalone --nproc-per-node 1``: two worlds of one process
    each; the srun tasks still split the work."""
    srun_task(monkeypatch, 1, 2)
    torchrun(monkeypatch, 0, 1)
    assert detect_shard() == Shard(1, 2)


def test_torch_process_group_wins_over_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch.distributed as dist

    srun_task(monkeypatch, 1, 2)
    torchrun(monkeypatch, 2, 3)
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        assert detect_shard() == Shard(0, 1, from_torch=True)
        assert detect_shard().from_torch
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SLURM_PROCID": "x", "SLURM_NTASKS": "2"}, "SLURM_PROCID='x' is not a non-negative"),
        ({"SLURM_PROCID": "2", "SLURM_NTASKS": "2"}, "SLURM_PROCID=2 and SLURM_NTASKS=2"),
        ({"RANK": "1", "WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a non-negative"),
        ({"RANK": "3", "WORLD_SIZE": "3"}, "RANK=3 and WORLD_SIZE=3"),
    ],
)
def test_malformed_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        detect_shard()


def test_local_rank_from_torchrun_then_srun(monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_rank() is None
    monkeypatch.setenv("SLURM_LOCALID", "3")
    assert local_rank() is None  # not an srun task
    srun_task(monkeypatch, 3, 8)
    assert local_rank() == 3
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert local_rank() == 1


def test_launcher_shard_is_detect_shards_answer_without_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert launcher_shard() == Shard(0, 1)
    srun_task(monkeypatch, 1, 2)
    with caplog.at_level(logging.DEBUG, logger="labelbridge.sharding"):
        assert launcher_shard() == Shard(1, 2)
    assert caplog.text == ""
    torchrun(monkeypatch, 3, 4)  # torchrun inside the srun task wins, as in detect_shard
    assert launcher_shard() == detect_shard() == Shard(3, 4)
