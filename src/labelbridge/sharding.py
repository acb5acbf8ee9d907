"""Sharding: which items (images, conversion tasks) a process handles.

Shard ``i`` of ``n`` takes the items whose index (in a fixed order) satisfies
``index % n == i``: disjoint, covering, deterministic. :func:`detect_shard` finds a
process's shard, first match wins:

1. an explicit shard (``--shard i/n``);
2. an initialised ``torch.distributed`` process group (rank / world size);
3. the ``RANK`` / ``WORLD_SIZE`` variables that ``torchrun`` sets (world size > 1);
4. the variables of an ``srun`` task, ``SLURM_PROCID`` / ``SLURM_NTASKS`` (tasks > 1);
5. else ``0/1``: everything.

**Which SLURM variables count.** ``SLURM_NTASKS`` alone is no sign of several
processes: an ``sbatch`` script and an ``salloc`` shell see the job's task count
(``sbatch`` even sets ``SLURM_PROCID=0``) while running one process. Only ``srun`` sets
``SLURM_STEP_ID`` for the tasks it starts, so a process is an srun task when
``SLURM_STEP_ID`` is a step number (not one of SLURM's special steps: the batch script,
the interactive step, the external step, whose ids are ``0xFFFFFFF0`` and above) and
``SLURM_PROCID`` is set; its shard is ``SLURM_PROCID`` of ``SLURM_NTASKS`` (srun sets it to
the step's task count; Lightning reads the same two variables for training). Where
torchrun runs inside an srun task (one torchrun per node), the torchrun variables
describe the real processes and win; that the two disagree is logged at info level.

This module imports no torch: ``torch.distributed`` is consulted only where it has been
imported already (a process group cannot exist otherwise).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass

from labelbridge.errors import ConfigError

log = logging.getLogger(__name__)

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
#: SLURM step ids from here up name special steps (batch script, interactive, extern).
_SLURM_SPECIAL_STEPS = 0xFFFFFFF0


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``; ``from_torch`` when the process group defines it."""

    index: int = 0
    count: int = 1
    from_torch: bool = False

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count}: need 0 <= i < n")

    def selects(self, position: int) -> bool:
        """Whether the item at ``position`` belongs to this shard."""
        return position % self.count == self.index

    @property
    def is_single(self) -> bool:
        return self.count == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"i/n"`` -> :class:`Shard`.

    Raises:
        ConfigError: malformed, or ``i`` not in ``0..n-1``.
    """
    match = _SHARD_RE.match(text)
    if not match:
        raise ConfigError(f"--shard {text!r}: expected i/n, e.g. 0/4 (shard 0 of 4)")
    return Shard(int(match.group(1)), int(match.group(2)))


def _env_int(name: str) -> int:
    value = os.environ[name]
    if not value.strip().isdigit():
        raise ConfigError(
            f"environment variable {name}={value!r} is not a non-negative integer; unset it "
            "or pass --shard i/n"
        )
    return int(value)


def _env_shard(rank_var: str, count_var: str) -> Shard:
    """The shard of two variables; a count of one (or zero) is one process, whatever the rank."""
    rank, count = _env_int(rank_var), _env_int(count_var)
    if count <= 1:
        return Shard()
    if rank >= count:
        raise ConfigError(
            f"environment variables {rank_var}={rank} and {count_var}={count}: the rank must "
            "be below the process count; unset them or pass --shard i/n"
        )
    return Shard(rank, count)


def torchrun_shard() -> Shard | None:
    """The shard of ``RANK`` / ``WORLD_SIZE`` (torchrun), or ``None`` where they are unset
    or describe one process.

    Raises:
        ConfigError: a value that is not a number, or ``RANK >= WORLD_SIZE > 1``.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    shard = _env_shard("RANK", "WORLD_SIZE")
    return None if shard.is_single else shard


def slurm_task() -> Shard | None:
    """``SLURM_PROCID`` of ``SLURM_NTASKS`` when this process is a task started by
    ``srun`` (see the module doc for the rule), else ``None``; one task gives ``0/1``.

    Raises:
        ConfigError: a value that is not a number, or ``SLURM_PROCID >= SLURM_NTASKS > 1``.
    """
    step = os.environ.get("SLURM_STEP_ID")
    if step is None or "SLURM_PROCID" not in os.environ:
        return None
    if not step.strip().isdigit() or int(step) >= _SLURM_SPECIAL_STEPS:
        return None  # the batch script, an interactive or the external step: one process
    if "SLURM_NTASKS" not in os.environ:
        return None
    return _env_shard("SLURM_PROCID", "SLURM_NTASKS")


def slurm_shard() -> Shard | None:
    """The shard of an srun task of a step with several tasks, else ``None``."""
    task = slurm_task()
    return None if task is None or task.is_single else task


def local_rank() -> int | None:
    """This process's index on its node: ``LOCAL_RANK`` (torchrun), else ``SLURM_LOCALID``
    of an srun task, else ``None``."""
    if os.environ.get("LOCAL_RANK", "").isdigit():
        return int(os.environ["LOCAL_RANK"])
    if slurm_task() is not None and os.environ.get("SLURM_LOCALID", "").isdigit():
        return int(os.environ["SLURM_LOCALID"])
    return None


def _torch_group_shard() -> Shard | None:
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size(), from_torch=True)
    return None


def launcher_shard() -> Shard:
    """This process's place among the processes started together: :func:`detect_shard`'s
    answer without an explicit shard, found without logging (for code that asks often,
    e.g. which process records a run's shared state).

    Raises:
        ConfigError: as :func:`detect_shard`.
    """
    return _torch_group_shard() or torchrun_shard() or slurm_shard() or Shard()


def detect_shard(explicit: Shard | None = None) -> Shard:
    """The shard of this process (sources and their order: see the module doc); logs
    where it came from.

    Raises:
        ConfigError: torchrun or SLURM variables that are not numbers or give a rank
            outside the process count.
    """
    if explicit is not None:
        log.info("shard %s: given explicitly (--shard)", explicit)
        return explicit
    group = _torch_group_shard()
    if group is not None:
        log.info("shard %s: from the torch.distributed process group", group)
        return group
    torchrun, slurm = torchrun_shard(), slurm_shard()
    if torchrun is not None:
        if slurm is not None and slurm != torchrun:
            log.info(
                "torchrun's RANK/WORLD_SIZE give shard %s, SLURM's SLURM_PROCID/SLURM_NTASKS "
                "give %s: using torchrun's (torchrun started this process inside the srun task)",
                torchrun,
                slurm,
            )
        log.info("shard %s: from torchrun's RANK/WORLD_SIZE", torchrun)
        return torchrun
    if slurm is not None:
        log.info("shard %s: from the srun task's SLURM_PROCID/SLURM_NTASKS", slurm)
        return slurm
    tasks = os.environ.get("SLURM_NTASKS", "")
    if tasks.isdigit() and int(tasks) > 1:
        log.info(
            "SLURM job with SLURM_NTASKS=%s, but this process was not started by srun "
            "(no SLURM_STEP_ID): it handles everything; start it with srun to split the work",
            tasks,
        )
    else:
        log.debug("no shard given or detected: this process handles everything")
    return Shard()
