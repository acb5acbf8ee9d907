"""Cases a newcomer's probe found that nothing reported (issue: nothing silent, nothing
lost). Each test reproduces one case; all failed before the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures_layouts import make_camvid, make_folder
from labelbridge.data import create_dataset
from labelbridge.data.checks import check_dataset
from labelbridge.errors import DatasetError


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

    from reliability_cases import setup_train

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
    ckpts = tmp_path / setup.output
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(ckpts.rglob("*.ckpt")):
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
    assert "resuming from" in again.stderr


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


def test_check_of_a_folder_without_any_split_is_not_ok(tmp_path: Path) -> None:
    # a generic layout found no split at all: "OK" would be a silent success
    for name in ("listfile", "folder"):
        (tmp_path / name / "images").mkdir(parents=True)
        with pytest.raises(DatasetError, match=f"no split of '{name}' found"):
            check_dataset(name, tmp_path / name)
