"""User errors through the real console script (issue 9, item 2): exit status 2, one
``error:`` paragraph naming the file (and line) and the problem, no traceback;
``--debug`` shows the traceback; usage errors exit 2 with the usage text.

The cases (bad mappings, unknown dataset, missing root, stage configs with unknown keys
or wrong types, a teacher whose taxonomy is not the mapping's source, strict weight
loading, a truncated checkpoint) are defined in ``benchmarks.common.reliability.CLI_CASES`` and
also counted by ``benchmarks/reliability.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.common.reliability import (
    CLEAR_ERROR,
    CLI_CASES,
    CliCase,
    edited_mapping,
    run_cli,
    run_cli_case,
)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in CLI_CASES],
)
def test_user_error_is_one_paragraph_exit_2(case: CliCase, tmp_path: Path) -> None:
    result = run_cli_case(case, tmp_path)
    assert result.outcome == CLEAR_ERROR, result.detail


def test_misspelt_mapping_message_in_full(tmp_path: Path) -> None:
    path, line = edited_mapping(tmp_path, "  Building:", "  Bildng: [building, wall]")
    proc = run_cli(["ontology", "check", path.name], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"error: bad.yaml:{line}: unknown extra label: 'Bildng' is not a class of taxonomy "
        "'camvid11'. Did you mean 'Building'?\n"
    )


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path, _ = edited_mapping(tmp_path, "  Building:", "  Bildng: [building, wall]")
    proc = run_cli(["--debug", "ontology", "check", path.name], cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "labelbridge.errors.OntologyError: bad.yaml:" in proc.stderr


def test_valid_mapping_exits_0(tmp_path: Path) -> None:
    proc = run_cli(["ontology", "check", "camvid11_to_cityscapes"], cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("OK ")


@pytest.mark.parametrize(
    ("text", "size"), [("960x704", (960, 704)), (" 64X48 ", (64, 48)), (None, None), ("", None)]
)
def test_sizes_parse_as_width_by_height(text: str | None, size: tuple[int, int] | None) -> None:
    from labelbridge.cli.app import parse_size

    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0x5", "-3x4", "960", "axb", "12x", "1x2x3"])
def test_bad_sizes_are_refused_naming_the_option(text: str) -> None:
    """One parser for every WxH option (ontology suggest used to accept 0 and negatives)."""
    from labelbridge.cli.app import parse_size
    from labelbridge.errors import UserError

    with pytest.raises(UserError, match=rf"--resize must be WIDTHxHEIGHT .* got '{text}'"):
        parse_size(text, option="--resize")
