"""Bad input and resource faults of the pseudo-labeller (issue 9, items 1 and 4),
through :func:`run_pseudo_label`.

Every corruption gives a clear error naming the file, or under ``on_error: skip`` a skip
that is counted and listed in ``report.json``; never a label file for the bad image and
never a label that differs from an undamaged run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from benchmarks.common.reliability import (
    CLEAR_ERROR,
    CORRUPTIONS,
    RECORDED_FALLBACK,
    disk_full_case,
    expected_outcome,
    oom_fallback_case,
    oom_no_fallback_case,
    pseudo_case,
)


@pytest.fixture(autouse=True)
def _one_thread(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.ERROR)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pristine")


@pytest.mark.parametrize("mode", ["raise", "skip"])
@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_bad_file_errors_or_is_listed_in_the_report(
    corruption: str, mode: str, tmp_path: Path, cache: Path
) -> None:
    result = pseudo_case(corruption, mode, tmp_path, cache=cache)
    assert result.outcome == expected_outcome(corruption, mode), result.detail


def test_out_of_memory_scale_falls_back_and_is_reported(tmp_path: Path) -> None:
    result = oom_fallback_case(tmp_path)
    assert result.outcome == RECORDED_FALLBACK, result.detail
    assert json.loads(result.detail)[0]["level"] == "one image and flip per pass"


def test_out_of_memory_with_nothing_left_stops_naming_the_scale(tmp_path: Path) -> None:
    result = oom_no_fallback_case(tmp_path)
    assert result.outcome == CLEAR_ERROR, result.detail
    assert "TTA scale 2.0" in result.detail


def test_disk_full_fails_cleanly_and_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    result = disk_full_case(tmp_path)
    assert result.outcome == CLEAR_ERROR, result.detail
    assert "no space left on device" in result.detail
