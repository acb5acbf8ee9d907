"""``srun labelbridge train`` runs through Lightning's own SLURM support: with the
variables of an srun task, the trainer the engine builds picks ``SLURMEnvironment``
(rank, world size and node from SLURM, processes started by srun, not by Lightning,
auto-requeue on), and only task 0 cleans the stage's log folder. Nothing is launched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import DDPStrategy

from benchmarks.common.layouts.toydata import toy_config
from labelbridge.engine.stage import (
    _remove_empty_files,
    _trainer_kwargs,
    check_one_trainer_per_task,
)
from labelbridge.errors import ConfigError

#: Launcher variables that would make Lightning pick another environment.
OTHER_LAUNCHERS = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "NODE_RANK",
    "GROUP_RANK",
    "LOCAL_WORLD_SIZE",
)


@pytest.fixture(autouse=True)
def _environment_put_back() -> Iterator[None]:
    """Lightning's SLURMEnvironment writes MASTER_ADDR (the first SLURM node) into
    os.environ; left there, a later DDP test waits for node07 forever."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def srun_task(monkeypatch: pytest.MonkeyPatch, procid: int, *, nodes: int, per_node: int) -> None:
    """The variables srun gives task ``procid`` of ``nodes x per_node`` tasks."""
    for name in OTHER_LAUNCHERS:
        monkeypatch.delenv(name, raising=False)
    env = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train-student",
        "SLURM_STEP_ID": "0",
        "SLURM_NODELIST": "node[07-08]" if nodes > 1 else "node07",
        "SLURM_NNODES": str(nodes),
        "SLURM_NTASKS": str(nodes * per_node),
        "SLURM_NTASKS_PER_NODE": str(per_node),
        "SLURM_PROCID": str(procid),
        "SLURM_LOCALID": str(procid % per_node),
        "SLURM_NODEID": str(procid // per_node),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def trainer_for(tmp_path: Path, **trainer: object) -> L.Trainer:
    """The trainer of a stage, built as the engine builds it (``_trainer_kwargs``)."""
    settings = {"accelerator": "cpu", "enable_progress_bar": False, **trainer}
    cfg = toy_config(tmp_path / "toy", tmp_path / "run", trainer=settings)
    return L.Trainer(**_trainer_kwargs(cfg), logger=False, enable_checkpointing=False)


def test_srun_task_trains_in_lightnings_slurm_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    srun_task(monkeypatch, 3, nodes=2, per_node=2)
    trainer = trainer_for(tmp_path, devices=2, num_nodes=2, strategy="ddp")
    env = trainer._accelerator_connector.cluster_environment
    assert isinstance(env, SLURMEnvironment) and env.auto_requeue
    assert env.main_address == "node07"
    assert (trainer.world_size, trainer.global_rank, trainer.local_rank, trainer.node_rank) == (
        4,
        3,
        1,
        1,
    )
    assert isinstance(trainer.strategy, DDPStrategy)
    assert env.creates_processes_externally  # srun started the processes, Lightning starts none
    env.validate_settings(num_devices=trainer.num_devices, num_nodes=trainer.num_nodes)


def test_devices_must_match_the_tasks_per_node(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """(Lightning checks it when ``fit`` starts the processes.)"""
    srun_task(monkeypatch, 0, nodes=1, per_node=2)
    trainer = trainer_for(tmp_path, devices=4, strategy="ddp")
    env = trainer._accelerator_connector.cluster_environment
    with pytest.raises(ValueError, match="HINT: Set `devices=2`"):
        env.validate_settings(num_devices=trainer.num_devices, num_nodes=trainer.num_nodes)


def test_only_srun_task_zero_removes_empty_log_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    logs = tmp_path / "logs" / "tensorboard"
    logs.mkdir(parents=True)
    (logs / "hparams.yaml").write_bytes(b"")
    srun_task(monkeypatch, 1, nodes=1, per_node=2)
    _remove_empty_files(tmp_path / "logs")
    assert (logs / "hparams.yaml").exists()
    srun_task(monkeypatch, 0, nodes=1, per_node=2)
    _remove_empty_files(tmp_path / "logs")
    assert not (logs / "hparams.yaml").exists()


def test_one_process_trainer_in_several_srun_tasks_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``trainer.devices=1`` under ``srun --ntasks=2``: Lightning's single-device strategy
    checks nothing, and both tasks would train the stage into one folder at once."""
    srun_task(monkeypatch, 1, nodes=1, per_node=2)
    single = trainer_for(tmp_path, devices=1)
    assert (type(single.strategy).__name__, single.world_size, single.is_global_zero) == (
        "SingleDeviceStrategy",
        1,
        True,  # both tasks would write the checkpoints
    )
    with pytest.raises(ConfigError) as err:
        check_one_trainer_per_task(single, tmp_path / "run" / "train")
    assert str(err.value).startswith(
        f"{tmp_path / 'run' / 'train'}: srun started 2 tasks, but trainer.devices and "
        "trainer.num_nodes make one training process"
    )
    check_one_trainer_per_task(trainer_for(tmp_path, devices=2, strategy="ddp"), tmp_path)
    monkeypatch.setenv("SLURM_NTASKS", "1")  # srun --ntasks=1: one task, one process
    check_one_trainer_per_task(trainer_for(tmp_path, devices=1), tmp_path)
