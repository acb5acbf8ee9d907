"""``datasets prepare``: resumable, atomic, parallel, with a JSON summary; and every
dataset's preparer resumes a half-done folder to byte-identical outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import prepare_toy
from benchmarks.common.layouts import PREPARER_SOURCES
from labelbridge.data.base import PREPARED_FILE
from labelbridge.data.prepare import PREPARERS, prepare_dataset
from labelbridge.errors import UserError
from labelbridge.files import TEMP_SUFFIX

TESTS = Path(__file__).resolve().parents[1]  # the tests folder (prepare_toy.py)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != PREPARED_FILE
    }


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    prepare_toy.install()
    root = tmp_path / "published"
    prepare_toy.write_source(root, 24)
    return root


def test_converts_every_task_and_writes_marker(toy: Path, tmp_path: Path) -> None:
    report = prepare_dataset(prepare_toy.TOY, toy, tmp_path / "out", progress=False)
    s = report.splits[0]
    assert (s.tasks, s.already_done, s.converted, s.files_written) == (24, 0, 24, 24)
    marker = json.loads((tmp_path / "out" / PREPARED_FILE).read_text())
    assert marker["dataset"] == prepare_toy.TOY
    assert marker["source_root"] == str(toy.resolve())
    assert len(_tree(tmp_path / "out")) == 24


def test_rerun_skips_finished_and_redoes_missing(toy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_dataset(prepare_toy.TOY, toy, out, progress=False)
    before = _tree(out)
    for name in ("labels/0003.png", "labels/0017.png"):
        (out / name).unlink()
    from labelbridge.files import _HOST

    # a partial file left by a killed process of this host
    (out / "labels" / f".0005.png.{_HOST}.999999.0{TEMP_SUFFIX}").write_bytes(b"partial")
    report = prepare_dataset(prepare_toy.TOY, toy, out, progress=False)
    s = report.splits[0]
    assert (s.already_done, s.converted) == (22, 2)
    assert _tree(out) == {k: v for k, v in before.items()}


def test_parallel_equals_serial(toy: Path, tmp_path: Path) -> None:
    prepare_dataset(prepare_toy.TOY, toy, tmp_path / "a", jobs=1, progress=False)
    prepare_dataset(prepare_toy.TOY, toy, tmp_path / "b", jobs=2, progress=False)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_shards_split_the_tasks_and_together_equal_one_run(toy: Path, tmp_path: Path) -> None:
    from labelbridge.sharding import Shard

    whole = tmp_path / "whole"
    prepare_dataset(prepare_toy.TOY, toy, whole, progress=False)
    out = tmp_path / "sharded"
    written = []
    for i in range(3):
        report = prepare_dataset(prepare_toy.TOY, toy, out, shard=Shard(i, 3), progress=False)
        s = report.splits[0]
        assert report.shard == f"{i}/3"
        assert (s.tasks, s.split_tasks, s.already_done, s.converted) == (8, 24, 0, 8)
        written.append(set(_tree(out)) - set().union(*written))
    assert written[1] == {f"labels/{n:04d}.png" for n in range(1, 24, 3)}
    assert _tree(out) == _tree(whole)


def test_srun_task_prepares_its_shard(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    report = prepare_dataset(prepare_toy.TOY, toy, tmp_path / "out", progress=False)
    assert report.shard == "1/2" and report.splits[0].converted == 12
    assert set(_tree(tmp_path / "out")) == {f"labels/{n:04d}.png" for n in range(1, 24, 2)}


def test_bad_source_file_named_or_recorded(toy: Path, tmp_path: Path) -> None:
    bad = toy / "src" / "0002.txt"
    bad.write_text("not numbers")
    with pytest.raises(UserError, match=str(bad)):
        prepare_dataset(prepare_toy.TOY, toy, tmp_path / "out", progress=False)
    report = prepare_dataset(
        prepare_toy.TOY, toy, tmp_path / "out", on_error="skip", progress=False
    )
    s = report.splits[0]
    assert s.already_done == 2  # the first run converted 0000 and 0001 before stopping
    assert (s.converted, [r.path for r in s.skipped]) == (21, [str(bad)])
    assert not report.ok


def test_refuses_other_source_in_same_out(toy: Path, tmp_path: Path) -> None:
    prepare_dataset(prepare_toy.TOY, toy, tmp_path / "out", progress=False)
    other = tmp_path / "other"
    prepare_toy.write_source(other, 2)
    with pytest.raises(UserError, match="prepared with source_root"):
        prepare_dataset(prepare_toy.TOY, other, tmp_path / "out", progress=False)


def test_out_must_differ_from_root(toy: Path) -> None:
    with pytest.raises(UserError, match="--out must differ from --root"):
        prepare_dataset(prepare_toy.TOY, toy, toy, progress=False)


def test_unknown_dataset_lists_those_with_prepare() -> None:
    with pytest.raises(UserError, match="has no prepare step; datasets with one:"):
        prepare_dataset("camvid", ".", "/nonexistent", progress=False)


def _run_toy(root: Path, out: Path, delay: float) -> subprocess.Popen:
    code = (
        "import sys, prepare_toy; prepare_toy.install();"
        "from labelbridge.data.prepare import prepare_dataset;"
        f"prepare_dataset(prepare_toy.TOY, {str(root)!r}, {str(out)!r}, jobs=2, progress=False)"
    )
    env = {**os.environ, "TOY_DELAY": str(delay), "PYTHONPATH": str(TESTS)}
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        if f"PPid:\t{pid}" in lines:
            found.append(int(status.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_killed_run_resumes_to_identical_outputs(toy: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    prepare_dataset(prepare_toy.TOY, toy, reference, progress=False)
    out = tmp_path / "killed"
    proc = _run_toy(toy, out, delay=0.2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("labels/*.png"))) < 4:
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.05)
    assert workers and not [w for w in workers if Path(f"/proc/{w}").exists()], (
        "worker processes outlived the killed run"
    )
    done = len(list(out.glob("labels/*.png")))
    assert 4 <= done < 24, f"kill landed outside the run ({done} files)"
    report = prepare_dataset(prepare_toy.TOY, toy, out, progress=False)
    s = report.splits[0]
    assert s.already_done == done and s.converted == 24 - done
    assert _tree(out) == _tree(reference)
    assert not list(out.rglob(f"*{TEMP_SUFFIX}"))


# ---------------------------------------------------------------------------- every dataset
#: Preparer name -> writer of its published release (every layout module's ``PUBLISHED_EXTRA``).
PUBLISHED = PREPARER_SOURCES


def test_every_preparer_has_a_published_fixture() -> None:
    from labelbridge.data import readers  # noqa: F401

    assert sorted(PUBLISHED) == sorted(n for n in PREPARERS if n != prepare_toy.TOY)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_dataset_preparer_resumes_half_done_folder(name: str, tmp_path: Path) -> None:
    root = tmp_path / "published"
    PUBLISHED[name](root)
    first = prepare_dataset(name, root, tmp_path / "a", progress=False)
    assert first.ok and sum(s.converted for s in first.splits) > 0
    reference = _tree(tmp_path / "a")
    out = tmp_path / "b"
    prepare_dataset(name, root, out, progress=False)
    outputs = sorted(p for p in out.rglob("*") if p.is_file() and p.name != PREPARED_FILE)
    for p in outputs[::2]:
        p.unlink()
    again = prepare_dataset(name, root, out, jobs=2, progress=False)
    assert sum(s.converted for s in again.splits) >= 1
    assert _tree(out) == reference


def _prepare_args(toy: Path, out: Path) -> list[str]:
    """``datasets prepare`` of the toy preparer from ``toy`` into ``out``."""
    return ["datasets", "prepare", prepare_toy.TOY, "--root", str(toy), "--out", str(out)]


def test_cli_prepare_json_is_pure_json(toy: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labelbridge.cli.app import app

    prepare_toy.install()
    result = CliRunner().invoke(app, [*_prepare_args(toy, tmp_path / "o"), "--jobs", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["splits"][0]["converted"] == 24 and data["ok"] is True


def test_cli_prepare_shard(toy: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labelbridge.cli.app import app

    prepare_toy.install()
    args = _prepare_args(toy, tmp_path / "o")
    result = CliRunner().invoke(app, [*args, "--jobs", "1", "--shard", "0/4"])
    assert result.exit_code == 0, result.output
    assert f"{prepare_toy.TOY} train: 6 items (shard 0/4 of 24), 0 already done" in result.stdout
