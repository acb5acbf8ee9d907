"""Lock files: held for the block and removed after it (also after an exception); a
second claimant refused with the holder named; stale locks (dead process of this host,
an empty file) taken over; another host's lock refused unless forced."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labelbridge import locks
from labelbridge.files import OutputWriteError
from labelbridge.locks import LockHeldError, claim_lock

HOST = locks._HOST


def write_lock(path: Path, *, pid: int, host: str = HOST) -> bytes:
    data = (
        json.dumps({"host": host, "pid": pid, "started": "2024-01-01T00:00:00+00:00"}) + "\n"
    ).encode()
    path.write_bytes(data)
    return data


def dead_pid() -> int:
    """The id of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_holds_the_record_and_is_removed_after_the_block(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl.lock"
    with claim_lock(path, what="shard 0/1 of out", details={"shard": "0/1"}) as record:
        on_disk = json.loads(path.read_text())
        assert on_disk == record
        assert (on_disk["host"], on_disk["pid"], on_disk["shard"]) == (HOST, os.getpid(), "0/1")
        assert on_disk["started"].endswith("+00:00")
    assert not path.exists()


def test_lock_is_removed_after_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with pytest.raises(RuntimeError, match="boom"):
        with claim_lock(path, what="x"):
            assert path.is_file()
            raise RuntimeError("boom")
    assert not path.exists()


def test_second_claimant_is_refused_naming_file_and_holder(tmp_path: Path) -> None:
    path = tmp_path / "manifest.0-of-2.jsonl.lock"
    with claim_lock(path, what="shard 0/2 of out/cv"):
        before = path.read_bytes()
        with pytest.raises(LockHeldError) as err:
            with claim_lock(path, what="shard 0/2 of out/cv"):
                pass
        assert path.read_bytes() == before  # the holder's lock is untouched
    text = str(err.value)
    assert text.startswith(
        f"{path}: shard 0/2 of out/cv is being worked on by process {os.getpid()}"
    )
    assert f"on host {HOST}" in text and f"delete {path}" in text


def test_lock_of_a_live_process_of_this_host_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(path, pid=holder.pid)
        with pytest.raises(LockHeldError, match=f"by process {holder.pid} on host"):
            with claim_lock(path, what="a"):
                pass
    finally:
        holder.kill()
        holder.wait()
    # the same lock, now of an ended process: taken over
    with claim_lock(path, what="a"):
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path, caplog) -> None:
    path = tmp_path / "manifest.jsonl.lock"
    pid = dead_pid()
    write_lock(path, pid=pid)
    with caplog.at_level(logging.WARNING, logger="labelbridge.locks"):
        with claim_lock(path, what="shard 0/1 of out/cv"):
            assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"taking over the lock of shard 0/1 of out/cv: process {pid}" in caplog.text
    assert "no longer runs" in caplog.text
    assert not path.exists()


def test_lock_of_another_host_is_refused_unless_forced(tmp_path: Path, caplog) -> None:
    path = tmp_path / "a.lock"
    write_lock(path, pid=12345, host="node-elsewhere-07")
    with pytest.raises(LockHeldError) as err:
        with claim_lock(path, what="shard 1/4 of out/cv"):
            pass
    text = str(err.value)
    assert "claimed by process 12345 on host node-elsewhere-07" in text
    assert f"this is host {HOST}, which cannot tell" in text
    assert f"delete {path} or run again with --force-unlock" in text
    assert json.loads(path.read_text())["host"] == "node-elsewhere-07"
    with caplog.at_level(logging.WARNING, logger="labelbridge.locks"):
        with claim_lock(path, what="shard 1/4 of out/cv", force=True):
            assert json.loads(path.read_text())["host"] == HOST
    assert "runs on another host and --force-unlock was given" in caplog.text
    assert not path.exists()


def test_force_does_not_take_a_live_lock_of_this_host(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    with claim_lock(path, what="a"):
        with pytest.raises(LockHeldError, match="is being worked on by"):
            with claim_lock(path, what="a", force=True):
                pass


@pytest.mark.parametrize("content", [b"", b'{"host": "h", "pi', b"not json\n", b"[1, 2]\n"])
def test_empty_or_unparsable_lock_is_taken_over_after_a_moment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, content: bytes
) -> None:
    monkeypatch.setattr(locks, "_SETTLE_SECONDS", 0.1)
    path = tmp_path / "a.lock"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="labelbridge.locks"):
        with claim_lock(path, what="a"):
            assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "holds no holder record" in caplog.text


def test_lock_taken_over_meanwhile_is_left_to_its_new_holder(tmp_path: Path, caplog) -> None:
    path = tmp_path / "a.lock"
    with caplog.at_level(logging.WARNING, logger="labelbridge.locks"):
        with claim_lock(path, what="a"):
            theirs = write_lock(path, pid=999, host="other-node")
    assert path.read_bytes() == theirs
    assert "now names another holder" in caplog.text


def test_lock_that_cannot_be_created_is_a_write_error(tmp_path: Path) -> None:
    path = tmp_path / "missing-folder" / "a.lock"
    with pytest.raises(OutputWriteError, match=f"{path}: cannot create lock file"):
        with claim_lock(path, what="a"):
            pass


def test_wait_takes_the_lock_once_its_holder_releases_it(tmp_path: Path) -> None:
    import threading
    import time

    path = tmp_path / "report.json.lock"
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with claim_lock(path, what="the report"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    threading.Timer(0.3, release.set).start()
    start = time.monotonic()
    with claim_lock(path, what="the report", wait=10) as record:
        waited = time.monotonic() - start
        assert json.loads(path.read_text()) == record
    thread.join()
    assert 0.25 <= waited < 5
    assert not path.exists()


def test_wait_gives_up_after_its_time(tmp_path: Path) -> None:
    import time

    path = tmp_path / "a.lock"
    with claim_lock(path, what="a"):
        start = time.monotonic()
        with pytest.raises(LockHeldError, match="is being worked on by"):
            with claim_lock(path, what="a", wait=0.3):
                pass
        assert time.monotonic() - start >= 0.3
