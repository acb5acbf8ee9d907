"""Sharding: which images a process handles.

Shard ``i`` of ``n`` takes the images whose index (in the dataset's sorted order, after
``limit``) satisfies ``index % n == i``: disjoint, covering, deterministic. The shard
comes from ``--shard i/n``, else from an initialised ``torch.distributed`` group, else
from the ``RANK`` / ``WORLD_SIZE`` variables that ``torchrun`` sets, else ``0/1``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

from labelbridge.errors import ConfigError

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


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
        """Whether the image at ``position`` belongs to this shard."""
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


def detect_shard(explicit: Shard | None = None) -> Shard:
    """The shard of this process (see module doc)."""
    if explicit is not None:
        return explicit
    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size(), from_torch=True)
    world = os.environ.get("WORLD_SIZE")
    rank = os.environ.get("RANK")
    if world and rank and world.isdigit() and rank.isdigit() and int(world) > 1:
        return Shard(int(rank), int(world), from_torch=False)
    return Shard()


def local_cuda_device() -> str:
    """``cuda:<LOCAL_RANK mod GPUs>`` under torchrun (several processes may share a GPU),
    else ``cuda``."""
    local = os.environ.get("LOCAL_RANK")
    if local and local.isdigit() and torch.cuda.is_available():
        return f"cuda:{int(local) % max(1, torch.cuda.device_count())}"
    return "cuda"


def barrier(shard: Shard) -> None:
    """Wait for all processes of an initialised process group (no-op otherwise)."""
    if shard.from_torch and dist.is_available() and dist.is_initialized():
        dist.barrier()
