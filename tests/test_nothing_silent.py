"""Cases a newcomer's probe found that nothing reported (issue: nothing silent, nothing
lost). Each test reproduces one case; all failed before the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from benchmarks.common.layouts import make_camvid, make_folder
from labelbridge.data import create_dataset
from labelbridge.data.checks import check_dataset
from labelbridge.errors import ConfigError, DatasetError


# ---------------------------------------------------------------------------- 5. silent data
def test_symlinked_subfolder_of_folder_dataset_is_read(tmp_path: Path) -> None:
    fx = make_folder(tmp_path / "d")
    elsewhere = tmp_path / "town_b_images"
    shutil.copytree(fx.root / "images/train/town_a", elsewhere)
    (fx.root / "images/train/town_b").symlink_to(elsewhere, target_is_directory=True)
    labels = tmp_path / "town_b_labels"
    shutil.copytree(fx.root / "labels/train/town_a", labels)
    (fx.root / "labels/train/town_b").symlink_to(labels, target_is_directory=True)
    ds = create_dataset("folder", fx.root, "train")
    assert "images/train/town_b/img_000" in [p.key for p in ds.pairs]
    assert len(ds) == len(fx.keys["train"]) + 1
    report = check_dataset("folder", fx.root, ["train"])
    assert report.ok and report.splits[0].pairs == len(fx.keys["train"]) + 1


def test_symlink_cycle_does_not_loop(tmp_path: Path) -> None:
    fx = make_folder(tmp_path / "d")
    (fx.root / "images/train/town_a/loop").symlink_to(
        fx.root / "images/train", target_is_directory=True
    )
    ds = create_dataset("folder", fx.root, "train")
    assert len(ds) == len(fx.keys["train"])


def test_jpeg_saved_as_png_label_is_refused(tmp_path: Path) -> None:
    fx = make_camvid(tmp_path / "d")
    key = fx.keys["train"][0]
    label_path = fx.files[key][1]
    ids = np.asarray(Image.open(label_path))
    Image.fromarray(ids.astype(np.uint8), mode="L").save(label_path, format="JPEG", quality=75)
    with pytest.raises(DatasetError, match=r"JPEG.*lossy") as info:
        create_dataset("camvid", fx.root, "train")[0]
    assert str(label_path) in str(info.value)
    report = check_dataset("camvid", fx.root, ["train"])
    assert not report.ok and report.splits[0].unreadable[0].path == str(label_path)


def test_grey_alpha_label_reads_its_grey_channel_or_is_named(tmp_path: Path) -> None:
    fx = make_camvid(tmp_path / "d")
    key = fx.keys["train"][0]
    label_path = fx.files[key][1]
    ids = np.asarray(Image.open(label_path)).astype(np.uint8)
    opaque = np.dstack([ids, np.full_like(ids, 255)])
    Image.fromarray(opaque, mode="LA").save(label_path)
    np.testing.assert_array_equal(create_dataset("camvid", fx.root, "train")[0].label, ids)
    see_through = opaque.copy()
    see_through[0, 0, 1] = 0
    Image.fromarray(see_through, mode="LA").save(label_path)
    with pytest.raises(DatasetError, match=r"mode LA.*transparent") as info:
        create_dataset("camvid", fx.root, "train")[0]
    assert str(label_path) in str(info.value) and "differs from image" not in str(info.value)


# ---------------------------------------------------------------------------- 6. tracebacks
@pytest.mark.shared
def test_truncated_published_weights_give_a_message(weights_dir: Path, tmp_path: Path) -> None:
    from labelbridge.errors import CheckpointError
    from labelbridge.models.state_dict import torch_load

    data = (weights_dir / "dicenet_s_1.75_city_1024x512.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[:58260])  # this cut raised struct.error inside torch.load
    with pytest.raises(CheckpointError, match=r"cut\.pth: not a PyTorch checkpoint or truncated"):
        torch_load(cut)


@pytest.mark.parametrize(
    "text", ["teacher:\n  checkpoint: a.ckpt\n", "- 1\n- 2\n", "}\x80\x02q\x00.", "(lp0\n."]
)
def test_text_and_odd_files_as_checkpoint_give_a_message(text: str, tmp_path: Path) -> None:
    from labelbridge.errors import CheckpointError
    from labelbridge.models.state_dict import torch_load

    path = tmp_path / "given.ckpt"
    path.write_text(text, encoding="latin-1")
    with pytest.raises(CheckpointError, match="given.ckpt: not a PyTorch checkpoint"):
        torch_load(path)


# ---------------------------------------------------------------------------- 3. signals
@pytest.mark.parametrize(("signum", "code"), [(15, 143), (2, 130)])
def test_signal_during_train_exits_nonzero_and_resumes(
    signum: int, code: int, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import time

    from benchmarks.common.reliability import setup_train

    setup = setup_train(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        ["labelbridge", *setup.args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # the latest state (not the best, saved just before it) is what a rerun resumes from
    ckpts = tmp_path / setup.output
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(ckpts.rglob("last.ckpt")):
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before the signal"
    proc.send_signal(signal.Signals(signum))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    assert f"interrupted by {signal.Signals(signum).name}" in err and "resume" in err
    again = subprocess.run(
        ["labelbridge", *setup.args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-2000:]
    # the rerun continues a stage from its last state (on a stalled machine the signal may
    # land after stage 1 finished; then that stage is kept and the fine-tune resumes)
    assert "resuming from" in again.stderr or ("stage 'train' already finished" in again.stderr), (
        again.stderr[-2000:]
    )
    assert "train: training from epoch 1" not in again.stderr, again.stderr[-2000:]


def test_a_stage_cut_off_before_its_first_latest_state_starts_over_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from labelbridge.engine.stage import start_stage_over

    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    (ckpts / "best-e000-s000004.ckpt").write_bytes(b"x")
    (ckpts / "notes.txt").write_text("kept")
    with caplog.at_level(logging.INFO, logger="labelbridge"):
        start_stage_over("train", ckpts, 6)
    assert sorted(p.name for p in ckpts.iterdir()) == ["notes.txt"]
    assert "removing 1 checkpoint(s)" in caplog.text and "best-e000-s000004.ckpt" in caplog.text
    assert "train: training from epoch 1 of 6" in caplog.text


# ---------------------------------------------------------------------------- 2. fingerprints
def test_stage_fingerprint_counts_paths_by_where_they_lead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labelbridge.pipeline import fingerprint

    (tmp_path / "labelbridge_demo/world/source").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    relative = {"datasets": [{"root": "labelbridge_demo/world/source", "split": "train"}]}
    absolute = {
        "datasets": [{"root": str(tmp_path / "labelbridge_demo/world/source"), "split": "train"}]
    }
    assert fingerprint(relative) == fingerprint(absolute)
    other = {"datasets": [{"root": "labelbridge_demo/world/source", "split": "val"}]}
    assert fingerprint(other) != fingerprint(relative)
    (tmp_path / "elsewhere").mkdir()
    moved = {"datasets": [{"root": "elsewhere", "split": "train"}]}
    assert fingerprint(moved) != fingerprint(relative)


def test_stage_fingerprint_does_not_change_when_the_stage_creates_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A teacher stage's config names its own output folder, which exists only once the
    stage ran: the re-run must see the same fingerprint (the kill trials of the pipeline
    were refused with 'completed with a different configuration')."""
    from labelbridge.pipeline import stage_fingerprint

    (tmp_path / "world").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = {"taxonomy": "world", "epochs": 2, "output": "run/teacher"}
    before = stage_fingerprint(cfg)
    (tmp_path / "run" / "teacher").mkdir(parents=True)
    assert stage_fingerprint(cfg) == before
    assert stage_fingerprint({**cfg, "epochs": 3}) != before


def test_check_of_a_folder_without_any_split_is_not_ok(tmp_path: Path) -> None:
    # a generic layout found no split at all: "OK" would be a silent success
    for name in ("listfile", "folder"):
        (tmp_path / name / "images").mkdir(parents=True)
        with pytest.raises(DatasetError, match=f"no split of '{name}' found"):
            check_dataset(name, tmp_path / name)


# ------------------------------------------------------------ training resumes exactly
class _Stop(Exception):
    pass


class _StopAtEpoch(L.Callback):
    """Raises when ``stage`` (the stage folder's name) is about to start ``epoch``: the
    previous epoch's checkpoint has been written, as at a kill between epochs."""

    def __init__(self, stage: str, epoch: int) -> None:
        self.stage, self.epoch = stage, epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (
            Path(trainer.default_root_dir).name == self.stage
            and trainer.current_epoch == self.epoch
        ):
            raise _Stop(f"{self.stage} epoch {self.epoch}")


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def test_resumed_training_ends_with_the_uninterrupted_weights(tmp_path: Path) -> None:
    """Random crops, flips and jitter, one data-loading worker, a fine-tune stage:
    interrupted once in each stage and resumed, the final weights are bit-identical."""
    from benchmarks.common.layouts.toydata import make_toy_dataset, toy_config
    from labelbridge.engine.train import run_training

    toy = make_toy_dataset(tmp_path / "toy", splits={"train": 16, "val": 5})
    kw = {"epochs": 3, "num_workers": 1, "finetune": {"enabled": True, "epochs": 2}}
    whole = run_training(toy_config(toy, tmp_path / "whole", **kw))
    for stop in (_StopAtEpoch("train", 2), _StopAtEpoch("finetune", 1)):
        with pytest.raises(_Stop):
            run_training(toy_config(toy, tmp_path / "resumed", **kw), callbacks=[stop])
    resumed = run_training(toy_config(toy, tmp_path / "resumed", **kw))
    a, b = _weights(whole.final_checkpoint), _weights(resumed.final_checkpoint)
    assert sorted(a) == sorted(b)
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert differing == [], differing
    assert resumed.metrics == whole.metrics
    assert [h["step"] for h in resumed.history] == [h["step"] for h in whole.history]


# ------------------------------------------------------- a changed config is not ignored
def test_changed_settings_on_a_finished_run_are_refused_naming_them(tmp_path: Path) -> None:
    from benchmarks.common.layouts.toydata import make_toy_dataset, toy_config
    from labelbridge.engine.train import run_training

    toy = make_toy_dataset(tmp_path / "toy", splits={"train": 8, "val": 2})
    out = tmp_path / "run"
    cfg = toy_config(toy, out, epochs=1, steps_per_epoch=2, finetune={"enabled": False})
    first = run_training(cfg)
    recorded = (out / "config.yaml").read_text(encoding="utf-8")
    changed = toy_config(
        toy, out, epochs=5, steps_per_epoch=2, finetune={"enabled": False}, optimizer={"lr": 0.5}
    )
    with pytest.raises(ConfigError) as err:
        run_training(changed)
    text = str(err.value)
    assert str(out / "config.yaml") in text
    assert "epochs: 1 -> 5" in text and "optimizer.lr: 0.01 -> 0.5" in text
    assert "trainer" not in text  # only what changed is named
    assert (out / "config.yaml").read_text(encoding="utf-8") == recorded
    # settings that do not change the result resume (here: skip) the finished run
    quiet = cfg.model_copy(
        update={
            "num_workers": 1,
            "trainer": cfg.trainer.model_copy(update={"log_every_n_steps": 5}),
        }
    )
    again = run_training(quiet)
    assert again.metrics == first.metrics


def test_runs_recorded_by_earlier_versions_resume(tmp_path: Path) -> None:
    """Dataset entries read as they are once spelt their reader ``name``, and configs had
    no ``partial_loss``; a finished run recorded so, and a pipeline stage fingerprinted so,
    are the same settings today."""
    from benchmarks.common.layouts.toydata import make_toy_dataset, toy_config
    from labelbridge.config.compat import as_recorded_before
    from labelbridge.engine.train import run_training
    from labelbridge.pipeline import stage_fingerprint
    from labelbridge.pipeline.state import earlier_fingerprints

    toy = make_toy_dataset(tmp_path / "toy", splits={"train": 8, "val": 2})
    out = tmp_path / "run"
    cfg = toy_config(toy, out, epochs=1, steps_per_epoch=2, finetune={"enabled": False})
    first = run_training(cfg)
    recorded = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
    older = as_recorded_before(recorded)[-1]
    assert "partial_loss" in recorded and "partial_loss" not in older
    assert "loggers" in recorded["trainer"] and "loggers" not in older["trainer"]
    assert older["datasets"][0]["name"] == recorded["datasets"][0]["reader"]
    (out / "config.yaml").write_text(yaml.safe_dump(older), encoding="utf-8")
    assert run_training(cfg).metrics == first.metrics  # skipped as finished, not refused

    dump = cfg.model_dump(mode="json")
    assert stage_fingerprint(as_recorded_before(dump)[-1]) in earlier_fingerprints(dump)
    other = toy_config(toy, out, epochs=2, steps_per_epoch=2, finetune={"enabled": False})
    other_then = as_recorded_before(other.model_dump(mode="json"))[-1]
    assert stage_fingerprint(other_then) not in earlier_fingerprints(dump)


def test_changed_train_config_through_the_cli_exits_2_with_the_keys(tmp_path: Path) -> None:
    from benchmarks.common.reliability import run_cli, setup_train

    setup = setup_train(tmp_path)
    base = [*setup.args, "--set", "epochs=1", "--set", "finetune.enabled=false"]
    assert run_cli(base, cwd=tmp_path).returncode == 0
    proc = run_cli([*base, "--set", "batch_size=2"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "batch_size: 4 -> 2" in proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------ 8. partial downloads
def test_check_of_a_partial_download_notes_the_absent_split(tmp_path: Path) -> None:
    """KITTI without ``testing/``, RELLIS-3D without ``val.lst``: the downloaded splits are
    checked and OK, the others are noted as absent (exit 0); asked for by name, an absent
    split is a problem."""
    from benchmarks.common.layouts import make_kitti, make_rellis3d
    from benchmarks.common.reliability import run_cli

    make_kitti(tmp_path / "kitti")
    shutil.rmtree(tmp_path / "kitti" / "testing")
    make_rellis3d(tmp_path / "rellis")
    (tmp_path / "rellis" / "val.lst").unlink()
    for name, root, absent in (("kitti", "kitti", "testing"), ("rellis3d", "rellis", "val")):
        report = check_dataset(name, tmp_path / root)
        assert report.ok, report.to_dict()
        gone = report.split(absent)
        assert gone.absent and gone.error is None and gone.num_problems == 0
        assert all(s.pairs > 0 for s in report.splits if s.split != absent and s.labelled)
        proc = run_cli(["datasets", "check", name, "--root", str(tmp_path / root)], cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"{absent}: absent, not checked" in proc.stdout and "OK" in proc.stdout
        named = check_dataset(name, tmp_path / root, [absent])
        assert not named.ok and "not found" in named.split(absent).error
    # a label folder missing beside its images is damage, not a partial download
    shutil.rmtree(tmp_path / "kitti" / "training" / "semantic")
    damaged = check_dataset("kitti", tmp_path / "kitti")
    assert not damaged.ok and damaged.split("training").absent is None
    assert "training/semantic: label folder" in damaged.split("training").error
    # and a root holding no split at all is not a dataset
    shutil.rmtree(tmp_path / "kitti" / "training")
    with pytest.raises(DatasetError, match="no split"):
        check_dataset("kitti", tmp_path / "kitti")


# ---------------------------------------------------------------------------- 6. OS errors
@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (
            PermissionError(13, "Permission denied", "/data/run/train/last.ckpt"),
            2,
            "error: /data/run/train/last.ckpt: Permission denied",
        ),
        (
            IsADirectoryError(21, "Is a directory", "/data/teacher.ckpt"),
            2,
            "error: /data/teacher.ckpt: Is a directory",
        ),
        (
            OSError(28, "No space left on device"),
            1,
            "error: No space left on device; finished work is kept: free space and run the "
            "same command again to resume",
        ),
        (
            OSError(5, "Input/output error", "/mnt/nfs/img.png"),
            1,
            "error: /mnt/nfs/img.png: Input/output error",
        ),
    ],
)
def test_os_error_of_a_command_is_one_line_naming_the_file(
    error: OSError,
    code: int,
    line: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from labelbridge.cli import taxonomy_cmds
    from labelbridge.cli.app import main

    def fail() -> list[str]:
        raise error

    monkeypatch.setattr(taxonomy_cmds, "list_taxonomies", fail)
    with pytest.raises(SystemExit) as exit_info:
        main(["taxonomies"])
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert err.strip() == line and "Traceback" not in err
    with pytest.raises(type(error)):  # --debug shows the traceback
        main(["--debug", "taxonomies"])


def test_os_error_naming_no_file_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OS error without a file is a bug to report, not an input to fix."""
    from labelbridge.cli import taxonomy_cmds
    from labelbridge.cli.app import main

    def fail() -> list[str]:
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(taxonomy_cmds, "list_taxonomies", fail)
    with pytest.raises(ConnectionResetError):
        main(["taxonomies"])


def test_predict_out_of_memory_names_the_image_and_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from labelbridge import models
    from labelbridge.cli.app import main
    from labelbridge.models import create_model, save_checkpoint
    from labelbridge.taxonomy import load_taxonomy

    tax = load_taxonomy("camvid")
    ckpt = save_checkpoint(
        tmp_path / "m.ckpt", create_model("tiny", tax.num_classes), spec="tiny", taxonomy=tax
    )
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "a.png")

    def out_of_memory(*args: object, **kwargs: object) -> torch.Tensor:
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 9663676416 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr(models.inference, "predict_logits", out_of_memory)
    argv = ["predict", str(tmp_path / "a.png"), "--checkpoint", str(ckpt), "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a.png'}: out of memory segmenting this 50x40 image on cpu" in err
    assert "--input-size (e.g. 25x20)" in err and "Traceback" not in err
