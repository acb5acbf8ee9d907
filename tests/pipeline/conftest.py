"""Fixtures of the pipeline tests."""

from __future__ import annotations

import pytest

from labelbridge.world import WorldPaths, WorldSizes, generate_world


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> WorldPaths:
    """A tiny procedural world (4 images per extra dataset, 64 x 48), one per test module."""
    return generate_world(
        tmp_path_factory.mktemp("world"), seed=1, sizes=WorldSizes.tiny(), image_size=(64, 48)
    )
