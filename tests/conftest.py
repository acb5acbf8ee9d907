"""Shared fixtures. Real data and weights are read from ../shared (never copied);
tests that need them skip with a clear message where the folder is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_paths import SHARED_DATA, SHARED_WEIGHTS


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared real data/weights folder is absent on this machine)")
    return path


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    return _need(SHARED_DATA / "camvid")


@pytest.fixture(scope="session")
def idd_lite_root() -> Path:
    return _need(SHARED_DATA / "idd_lite")


@pytest.fixture(scope="session")
def ycor_root() -> Path:
    return _need(SHARED_DATA / "ycor")


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    return _need(SHARED_WEIGHTS)
