"""Processes of a pseudo-labelling run: this process's shard (:mod:`labelbridge.sharding`,
re-exported here) and the barrier of a process group (its GPU: :mod:`labelbridge.models.device`).

Shard ``i`` of ``n`` takes the images whose index (in the dataset's sorted order, after
``limit``) satisfies ``index % n == i``. The shard comes from ``--shard i/n``, else an
initialised ``torch.distributed`` group, else torchrun's ``RANK`` / ``WORLD_SIZE``, else
an srun task's ``SLURM_PROCID`` / ``SLURM_NTASKS``, else ``0/1`` (see
:func:`~labelbridge.sharding.detect_shard`).
"""

from __future__ import annotations

import torch.distributed as dist

from labelbridge.sharding import Shard, detect_shard, parse_shard

__all__ = ["Shard", "barrier", "detect_shard", "parse_shard"]


def barrier(shard: Shard) -> None:
    """Wait for all processes of an initialised process group (no-op otherwise)."""
    if shard.from_torch and dist.is_available() and dist.is_initialized():
        dist.barrier()
