"""Which torch device a process runs its model on: ``auto`` is this process's GPU where
there is one (under torchrun or srun, the GPU of its local rank), else the CPU."""

from __future__ import annotations

import torch

from labelbridge.errors import ConfigError
from labelbridge.sharding import local_rank


def local_cuda_device() -> str:
    """``cuda:<local rank mod GPUs>`` under torchrun or srun (several processes may share a
    GPU; where srun binds one GPU to each task, that is ``cuda:0``), else ``cuda``."""
    local = local_rank()
    if local is not None and torch.cuda.is_available():
        return f"cuda:{local % max(1, torch.cuda.device_count())}"
    return "cuda"


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA (this process's local rank) when available, else CPU.

    Raises:
        ConfigError: ``cuda`` asked for but not available.
    """
    if name == "auto":
        return torch.device(local_cuda_device() if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r}: CUDA is not available on this machine; use cpu or auto"
            )
        return torch.device(local_cuda_device() if name == "cuda" else name)
    return torch.device(name)
