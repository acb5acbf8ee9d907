"""Issue 16: pseudo-labelling under SLURM and the shard lock files.

Two ``srun`` tasks (``SLURM_PROCID`` 0 and 1 of ``SLURM_NTASKS=2``, no torchrun variables)
label 12 images through the real CLI and write 12 manifest lines together (before, each
labelled every image: 24 lines); each shard's lock file refuses a second process for
the same shard, and is gone after a normal run and after an error.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_pseudo_run import folder_bytes, make_camvid, make_cfg, make_teacher

from benchmarks.common.reliability.pseudo_cases import pseudo_config, tiny_checkpoint
from labelbridge.config import dump_config
from labelbridge.config.pseudo import load_pseudo_config
from labelbridge.locks import LockHeldError, claim_lock
from labelbridge.pseudo.distributed import Shard
from labelbridge.pseudo.manifest import read_manifest
from labelbridge.pseudo.run import run_pseudo_label
from srun_env import cli_env, slurm_task_env

NAMES12 = [f"f{i:03d}" for i in range(12)]


def write_config(work: Path, data: Path) -> Path:
    """A pseudo-labelling config with a teacher checkpoint (every process loads the same one)."""
    tiny_checkpoint(work / "teacher.ckpt", "cityscapes")
    cfg = pseudo_config(
        data,
        work / "out",
        teacher={"checkpoint": str(work / "teacher.ckpt")},
        tta={"flip": True, "scales": [1.0]},
        outputs={"confidence": True, "previews": 2},
    )
    path = work / "pseudo.yaml"
    dump_config(cfg, path)
    return path


def manifest_lines(folder: Path) -> list[dict]:
    """Every line of every manifest file in ``folder`` (merged file and shard parts)."""
    return [rec for path in sorted(folder.glob("manifest*.jsonl")) for rec in read_manifest(path)]


def test_two_srun_tasks_label_twelve_images_once(tmp_path: Path) -> None:
    data = make_camvid(tmp_path / "camvid", names=NAMES12)
    cfg_path = write_config(tmp_path, data)
    command = [sys.executable, "-m", "labelbridge", "pseudo-label", str(cfg_path)]
    procs = [
        subprocess.Popen(
            [*command, "--json", "--no-progress"],
            env=slurm_task_env(i, 2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    summaries = []
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert f"shard {i}/2: from the srun task's SLURM_PROCID/SLURM_NTASKS" in err
        summaries.append(json.loads(out)["datasets"][0])
    assert [(s["total"], s["this_shard"], s["processed"]) for s in summaries] == [(12, 6, 6)] * 2

    folder = tmp_path / "out" / "cv"
    lines = manifest_lines(folder)
    assert len(lines) == 12  # the issue: 24 lines for 12 images
    assert [p.name for p in folder.glob("manifest*.jsonl")] == ["manifest.jsonl"]  # merged
    keys = [rec["key"] for rec in read_manifest(folder / "manifest.jsonl")]
    assert keys == [f"train/{n}" for n in NAMES12]  # each image once, in dataset order
    assert not list(folder.glob("*.lock"))
    report = json.loads((folder / "report.json").read_text())  # the last shard's: all 12
    assert report["complete"] and (report["images"]["total"], report["images"]["finished"]) == (
        12,
        12,
    )
    # the same files as one process
    reference = run_pseudo_label(load_pseudo_config(cfg_path, [f"output={tmp_path / 'ref'}"]))
    assert reference[0].processed == 12
    assert folder_bytes(folder) == folder_bytes(tmp_path / "ref" / "cv")
    assert len([p for p in folder_bytes(folder) if p.endswith("_conf.png")]) == 12


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_camvid(tmp_path / "camvid")


def test_lock_is_removed_after_a_normal_run_and_after_an_error(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_pseudo_label(make_cfg(data, out), teacher=make_teacher())
    assert (out / "cv" / "manifest.jsonl").is_file()
    assert not list((out / "cv").glob("*.lock"))
    teacher = make_teacher()
    teacher.model.head.bias.data[3] = float("nan")
    from labelbridge.taxonomy.priors import NonFiniteScoresError

    with pytest.raises(NonFiniteScoresError):
        run_pseudo_label(make_cfg(data, tmp_path / "bad"), teacher=teacher)
    assert (tmp_path / "bad" / "cv").is_dir()
    assert not list((tmp_path / "bad" / "cv").glob("*.lock"))


def test_second_process_for_the_same_shard_is_refused(data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out" / "cv"
    folder.mkdir(parents=True)
    lock = folder / "manifest.1-of-2.jsonl.lock"
    cfg = make_cfg(data, tmp_path / "out")
    with claim_lock(lock, what="shard 1/2 of the test"):
        with pytest.raises(LockHeldError) as err:
            run_pseudo_label(cfg, shard=Shard(1, 2), teacher=make_teacher())
        # another shard of the same folder is not held up
        (summary,) = run_pseudo_label(cfg, shard=Shard(0, 2), teacher=make_teacher())
        assert summary.processed == 3
    assert str(err.value).startswith(
        f"{lock}: shard 1/2 of {folder} is being worked on by process {os.getpid()}"
    )
    assert read_manifest(folder / "manifest.1-of-2.jsonl") == []  # the refused run wrote nothing
    (summary,) = run_pseudo_label(cfg, shard=Shard(1, 2), teacher=make_teacher())
    assert summary.processed == 3 and summary.report["complete"]
    assert not list(folder.glob("*.lock"))


def test_stale_lock_of_a_killed_run_is_taken_over(data: Path, tmp_path: Path, caplog) -> None:
    folder = tmp_path / "out" / "cv"
    folder.mkdir(parents=True)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    from labelbridge.locks import _HOST

    record = {"host": _HOST, "pid": ended.pid, "started": "2024-01-01T00:00:00+00:00"}
    (folder / "manifest.jsonl.lock").write_text(json.dumps({**record, "shard": "0/1"}) + "\n")
    with caplog.at_level(logging.WARNING, logger="labelbridge.locks"):
        (summary,) = run_pseudo_label(make_cfg(data, tmp_path / "out"), teacher=make_teacher())
    assert summary.processed == 6
    assert f"process {ended.pid} on host {_HOST}" in caplog.text and "no longer runs" in caplog.text
    assert not list(folder.glob("*.lock"))


def test_cli_names_the_lock_and_its_holder(data: Path, tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path, data)
    folder = tmp_path / "out" / "cv"
    folder.mkdir(parents=True)
    lock = folder / "manifest.jsonl.lock"
    holder = {"host": "node-elsewhere-03", "pid": 4711, "started": "2024-05-01T10:00:00+00:00"}
    lock.write_text(json.dumps({**holder, "shard": "0/1"}) + "\n")
    command = [sys.executable, "-m", "labelbridge", "pseudo-label", str(cfg_path), "--no-progress"]
    refused = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert f"error: {lock}: shard 0/1 of {folder} is claimed by process 4711 on host " in (
        " ".join(refused.stderr.split())
    )
    assert "--force-unlock" in refused.stderr
    assert not list(folder.glob("*.png"))
    forced = subprocess.run(
        [*command, "--force-unlock"], env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "runs on another host and --force-unlock was given" in forced.stderr
    assert len(read_manifest(folder / "manifest.jsonl")) == 6
    assert not lock.exists()


def test_sigterm_removes_the_lock_and_keeps_finished_images(tmp_path: Path) -> None:
    """A SLURM time limit sends SIGTERM: the run stops with 143, its lock is gone, and the
    images it finished stay in the manifest part of its shard."""
    import signal
    import time

    data = make_camvid(tmp_path / "camvid", names=[f"f{i:03d}" for i in range(80)])
    cfg_path = write_config(tmp_path, data)
    command = [sys.executable, "-m", "labelbridge", "pseudo-label", str(cfg_path), "--no-progress"]
    proc = subprocess.Popen(command, env=slurm_task_env(1, 2), stderr=subprocess.PIPE, text=True)
    folder = tmp_path / "out" / "cv"
    lock, part = folder / "manifest.1-of-2.jsonl.lock", folder / "manifest.1-of-2.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if lock.is_file() and part.is_file() and part.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    assert json.loads(lock.read_text())["shard"] == "1/2"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert not lock.exists()
    done = read_manifest(part)
    assert 2 <= len(done) < 40
    assert {rec["key"] for rec in done} <= {f"train/f{i:03d}" for i in range(1, 80, 2)}


def test_waiting_for_the_other_shards_names_them_on_timeout(data: Path, tmp_path: Path) -> None:
    """A task of a run without a process group that finished its shard waits for the
    others (the pipeline, before its student): a timeout names the folder, each shard
    still missing and its lock file; once the last shard has finished, it returns."""
    from labelbridge.pseudo.wait import ShardsUnfinishedError, wait_for_shards

    cfg = make_cfg(data, tmp_path / "out")
    folder = tmp_path / "out" / "cv"
    run_pseudo_label(cfg, shard=Shard(0, 2), teacher=make_teacher())
    with pytest.raises(ShardsUnfinishedError) as err:
        wait_for_shards(cfg, Shard(0, 2), timeout=0.2, poll=0.05)
    assert str(err.value) == (
        f"{tmp_path / 'out'}: shard 0/2 waited 0.2 s for the other shards of this run without "
        "a process group, and these are not finished: shard 1/2 (3 of 3 images to do, lock "
        f"file manifest.1-of-2.jsonl.lock absent (not started, or stopped)) of {folder}. See "
        "those tasks' logs; running the job again resumes (finished images are kept); "
        "pseudo.shard_wait sets how long to wait"
    )
    with claim_lock(folder / "manifest.1-of-2.jsonl.lock", what="shard 1/2 of the test"):
        with pytest.raises(ShardsUnfinishedError, match=r"lock file \S+ present \(still working"):
            wait_for_shards(cfg, Shard(0, 2), timeout=0.1, poll=0.05)
    (summary,) = run_pseudo_label(cfg, shard=Shard(1, 2), teacher=make_teacher())
    assert summary.report["images"]["remaining"] == 0
    wait_for_shards(cfg, Shard(0, 2), timeout=0.0)  # finished: no wait, no error
    wait_for_shards(cfg, Shard(0, 1), timeout=0.0)  # one process: nothing to wait for
