"""WeightedDatasetSampler: draws follow the weights, repeat per (seed, epoch), and DDP
shards are disjoint slices whose union is the single-process draw."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from labelbridge.data.sampling import ShardSampler, WeightedDatasetSampler

SIZES = [5, 200, 40]
WEIGHTS = [2.0, 1.0, 1.0]


def dataset_of(indices: list[int]) -> np.ndarray:
    edges = np.cumsum(SIZES)
    return np.searchsorted(edges, np.asarray(indices), side="right")


def test_draws_follow_weights_not_sizes() -> None:
    n = 10_000
    sampler = WeightedDatasetSampler(SIZES, WEIGHTS, num_samples=n, seed=3)
    counts = np.bincount(dataset_of(list(sampler)), minlength=3)
    expected = np.array(WEIGHTS) / sum(WEIGHTS) * n  # 5000, 2500, 2500
    assert counts.sum() == n
    assert np.all(np.abs(counts / n - expected / n) < 0.01), counts
    assert chisquare(counts, expected).pvalue > 1e-3


def test_within_dataset_uniform_and_in_range() -> None:
    sampler = WeightedDatasetSampler([5, 3], [1.0, 1.0], num_samples=8000, seed=1)
    indices = np.array(list(sampler))
    assert indices.min() >= 0 and indices.max() <= 7
    counts = np.bincount(indices, minlength=8)
    # each of dataset 0's 5 samples: 4000 / 5 = 800 expected; dataset 1's 3: 1333.3
    expected = np.array([800] * 5 + [4000 / 3] * 3)
    assert chisquare(counts, expected).pvalue > 1e-3


def test_deterministic_per_seed_and_epoch() -> None:
    a = WeightedDatasetSampler(SIZES, WEIGHTS, num_samples=64, seed=7)
    b = WeightedDatasetSampler(SIZES, WEIGHTS, num_samples=64, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    a.set_epoch(0)
    assert list(a) == first
    assert list(WeightedDatasetSampler(SIZES, WEIGHTS, num_samples=64, seed=8)) != first


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_shards_disjoint_and_union_is_single_draw(world_size: int) -> None:
    n = 60  # divisible by 2 and 3
    single = WeightedDatasetSampler(SIZES, WEIGHTS, num_samples=n, seed=5)
    single.set_epoch(2)
    full = list(single)
    shards = []
    for rank in range(world_size):
        s = WeightedDatasetSampler(
            SIZES, WEIGHTS, num_samples=n, seed=5, rank=rank, world_size=world_size
        )
        s.set_epoch(2)
        shards.append(list(s))
        assert len(s) == n // world_size == len(shards[-1])
    # positions are disjoint: rank r holds positions r, r + world, ...
    rebuilt = [None] * n
    for rank, shard in enumerate(shards):
        for j, idx in enumerate(shard):
            pos = rank + j * world_size
            assert rebuilt[pos] is None
            rebuilt[pos] = idx
    assert rebuilt == full


def test_num_samples_rounded_up_to_world_size() -> None:
    s = WeightedDatasetSampler([4], [1.0], num_samples=5, seed=0, rank=1, world_size=2)
    assert len(s) == 3 and len(list(s)) == 3


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="one weight per dataset"):
        WeightedDatasetSampler([3, 4], [1.0], num_samples=4)
    with pytest.raises(ValueError, match="weights must be > 0"):
        WeightedDatasetSampler([3, 4], [1.0, 0.0], num_samples=4)
    with pytest.raises(ValueError, match="at least one sample"):
        WeightedDatasetSampler([3, 0], [1.0, 1.0], num_samples=4)
    with pytest.raises(ValueError, match="rank 2"):
        WeightedDatasetSampler([3], [1.0], num_samples=4, rank=2, world_size=2)


def test_shard_sampler_covers_each_index_once() -> None:
    shards = [list(ShardSampler(7, rank=r, world_size=3)) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert [len(ShardSampler(7, rank=r, world_size=3)) for r in range(3)] == [3, 2, 2]
