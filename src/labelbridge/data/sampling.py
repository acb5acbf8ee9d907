"""Samplers over several datasets concatenated (``torch.utils.data.ConcatDataset`` order).

:class:`WeightedDatasetSampler` draws each element's dataset with probability
proportional to its weight, then a sample uniformly within it, so a small source
dataset can be seen as often as a large pseudo-labelled one. The draw is a function of
``(seed, epoch)`` only; under DDP every process computes the same global draw and takes
its own disjoint slice, so no communication is needed and the union over processes is
exactly the single-process draw.

:class:`ShardSampler` splits a validation set across processes without padding or
repetition, so the summed confusion matrices count every pixel exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class WeightedDatasetSampler(Sampler[int]):
    """Weighted sampling across datasets, deterministic per epoch, sharded across ranks.

    Args:
        sizes: number of samples of each dataset (``> 0``), in concatenation order.
        weights: relative weight of each dataset (``> 0``).
        num_samples: global draws per epoch (all processes together); rounded up to a
            multiple of ``world_size``.
        seed: base seed; the epoch's draw uses ``seed`` and the epoch (:meth:`set_epoch`).
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of processes.

    Yields:
        Global indices into the concatenation: dataset ``d``'s sample ``j`` is
        ``sum(sizes[:d]) + j``. Rank ``r`` yields positions ``r, r + world_size, ...`` of
        the global draw.

    Example:
        >>> s = WeightedDatasetSampler([3, 100], [1.0, 1.0], num_samples=4, seed=0)
        >>> len(list(s))
        4
    """

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float],
        *,
        num_samples: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise ValueError(
                f"need one weight per dataset, got {len(sizes)} sizes and {len(weights)} weights"
            )
        if any(int(s) < 1 for s in sizes):
            raise ValueError(f"every dataset needs at least one sample, got sizes {list(sizes)}")
        if any(not float(w) > 0 for w in weights):
            raise ValueError(f"weights must be > 0, got {list(weights)}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.sizes = [int(s) for s in sizes]
        self.weights = [float(w) for w in weights]
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.per_rank = math.ceil(num_samples / world_size)
        self.total = self.per_rank * world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's draw (Lightning calls this at each epoch start)."""
        self.epoch = int(epoch)

    def global_draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's draw for all ranks: ``(total,)`` dataset indices and ``(total,)``
        global sample indices, both int64."""
        gen = torch.Generator()
        gen.manual_seed(self.seed * 1_000_003 + self.epoch)
        probs = torch.tensor(self.weights, dtype=torch.float64)
        datasets = torch.multinomial(probs, self.total, replacement=True, generator=gen)
        sizes = torch.tensor(self.sizes, dtype=torch.int64)
        offsets = torch.cumsum(sizes, 0) - sizes
        u = torch.rand(self.total, generator=gen, dtype=torch.float64)
        within = torch.minimum((u * sizes[datasets]).long(), sizes[datasets] - 1)
        return datasets, offsets[datasets] + within

    def __iter__(self) -> Iterator[int]:
        _, indices = self.global_draw()
        return iter(indices[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.per_rank


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` of ``0..size-1``: a disjoint split of a
    dataset across processes, without padding (ranks may get one item fewer).

    Args:
        size: dataset length.
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(self, size: int, *, rank: int = 0, world_size: int = 1) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.size, self.rank, self.world_size = int(size), rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world_size))
