"""Environments of processes that tests start as srun tasks (or plain CLI runs): this
checkout's ``src`` first, one torch thread, and no launcher variables but the ones given."""

from __future__ import annotations

import os
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
#: Launcher variables a test process may have inherited; the CLI runs get none but theirs.
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK")


def cli_env(**extra: str) -> dict[str, str]:
    """One torch thread, this checkout's ``src`` first, no launcher variables but ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if k not in LAUNCH_VARS and not k.startswith("SLURM_")
    }
    paths = [str(SRC), os.environ.get("PYTHONPATH", "")]
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(p for p in paths if p))
    env.update(extra)
    return env


def slurm_task_env(procid: int, ntasks: int) -> dict[str, str]:
    """What srun gives task ``procid`` of ``ntasks`` (the variables labelbridge reads)."""
    return cli_env(
        SLURM_JOB_ID="4242",
        SLURM_STEP_ID="0",
        SLURM_PROCID=str(procid),
        SLURM_LOCALID=str(procid),
        SLURM_NTASKS=str(ntasks),
    )
