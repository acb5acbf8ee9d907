"""Bad input for every dataset reader (issue 9, item 1): each corruption of one sample,
in every published layout, gives a clear error naming the file (``on_error="raise"``)
or a skip that drops exactly that sample and lists it (``on_error="skip"``); every
sample returned carries exactly the label written. The kinds of problem are checked in
depth for CamVid in ``test_readers_robustness.py``; this is the matrix over all readers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from benchmarks.common.layouts import LAYOUTS
from benchmarks.common.reliability import CORRUPTIONS, expected_outcome, reader_case


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pristine")


@pytest.fixture(autouse=True)
def _quiet_readers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)


@pytest.mark.parametrize("corruption", CORRUPTIONS)
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_corrupted_sample_errors_or_is_recorded(
    layout: str, corruption: str, tmp_path: Path, cache: Path
) -> None:
    for mode in ("raise", "skip"):
        result = reader_case(layout, corruption, mode, tmp_path / mode, cache=cache)
        assert result.outcome == expected_outcome(corruption, mode), result.detail
