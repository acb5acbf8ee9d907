"""Every command with ``--json`` prints exactly one JSON document on stdout, also where
stderr is a terminal (where Lightning draws its progress bar): logs, bars and summaries
go to stderr. Each command runs as a user runs it, in its own process, with stderr on a
pseudo-terminal and stdout on a pipe."""

from __future__ import annotations

import json
import os
import pty
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from benchmarks.common.layouts import idd_polygons
from labelbridge.models import TinySegNet
from labelbridge.taxonomy import load_taxonomy
from labelbridge.world import WorldSizes, generate_world

CLI = [sys.executable, "-m", "labelbridge"]


def run_with_terminal_stderr(args: list[str], *, shell_pipe: str | None = None) -> str:
    """Run ``labelbridge ARGS`` with stderr on a pseudo-terminal; its stdout (through
    ``| shell_pipe`` when given). Fails the test with the terminal's text on a non-zero
    exit."""
    command = shlex.join([*CLI, *args])
    if shell_pipe:
        command = f"set -o pipefail; {command} | {shell_pipe}"
    main, side = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryFile() as stdout:
        try:
            proc = subprocess.Popen(["bash", "-c", command], stdout=stdout, stderr=side, env=env)
            os.close(side)
            terminal = bytearray()
            while True:  # drain the terminal, or a chatty command blocks on a full pty
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: every writer closed
                    break
                if not chunk:
                    break
                terminal += chunk
            code = proc.wait()
        finally:
            os.close(main)
        stdout.seek(0)
        text = stdout.read().decode()
    assert code == 0, f"{command} exited {code}:\n{terminal.decode(errors='replace')[-3000:]}"
    return text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return generate_world(
        tmp_path_factory.mktemp("world"), seed=0, sizes=WorldSizes.tiny(), image_size=(64, 48)
    )


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """``labelbridge train CFG --json | python -m json.tool`` with the progress bar on;
    the final checkpoint and the parsed document."""
    out = tmp_path_factory.mktemp("train")
    src = world.datasets["source"]
    cfg = {
        "taxonomy": str(world.source_taxonomy),
        "datasets": [{"reader": "folder", "root": str(src.root), "split": "train"}],
        "val": [{"reader": "folder", "root": str(src.root), "split": "val", "label": "v"}],
        "model": {"spec": "tiny:width=4"},
        "batch_size": 2,
        "epochs": 1,
        "steps_per_epoch": 2,
        "num_workers": 0,
        "augment": {"crop": [32, 48]},
        "finetune": {"enabled": False},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": True},
        "output": str(out / "run"),
    }
    (out / "train.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    text = run_with_terminal_stderr(
        ["train", str(out / "train.yaml"), "--json"], shell_pipe="python -m json.tool"
    )
    doc = json.loads(text)
    return Path(doc["final_checkpoint"]), doc


def test_train_json_through_json_tool(trained) -> None:
    checkpoint, doc = trained
    assert checkpoint.is_file()
    assert 0.0 <= doc["metrics"]["v"]["mIoU"] <= 1.0


def _cases(world, checkpoint: Path, tmp: Path) -> dict[str, list[str]]:
    """``--json`` invocations of every other command, on the tiny world."""
    extra = world.datasets["extra_a"]
    src = world.datasets["source"]
    images = sorted((Path(src.root) / "images" / "val").glob("*.png"))[:2]
    pseudo = {
        "teacher": {"checkpoint": str(checkpoint)},
        "datasets": [
            {
                "name": "extra_a",
                "reader": "folder",
                "root": str(extra.root),
                "split": "train",
                "ontology": str(extra.mapping),
            }
        ],
        "tta": {"flip": False, "scales": [1.0]},
        "outputs": {"previews": 0},
        "output": str(tmp / "pseudo"),
        "device": "cpu",
        "num_workers": 0,
    }
    (tmp / "pseudo.yaml").write_text(yaml.safe_dump(pseudo), encoding="utf-8")
    distill = {
        "taxonomy": str(world.source_taxonomy),
        "teacher": {"checkpoint": str(checkpoint)},
        "student": {"spec": "tiny:width=4"},
        "source": [{"reader": "folder", "root": str(src.root), "split": "train"}],
        "target": [{"reader": "folder", "root": str(extra.root), "split": "train"}],
        "val": [{"reader": "folder", "root": str(src.root), "split": "val", "label": "v"}],
        "batch_size": 2,
        "epochs": 1,
        "steps_per_epoch": 1,
        "num_workers": 0,
        "augment": {"crop": [32, 48]},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": True},
        "output": str(tmp / "distill"),
    }
    (tmp / "distill.yaml").write_text(yaml.safe_dump(distill), encoding="utf-8")
    idd = idd_polygons.make_published(tmp / "idd")
    state = tmp / "tiny.pt"
    torch.save(TinySegNet(load_taxonomy("cityscapes").num_classes).state_dict(), state)
    return {
        "taxonomies": ["taxonomies", "--json", "--mappings"],
        "ontology check": ["ontology", "check", "idd_level1_to_camvid11", "--json"],
        "ontology diff": [
            "ontology", "diff", "camvid11_to_cityscapes", "camvid11_to_cityscapes", "--json"
        ],
        "ontology convert": [
            "ontology", "convert", "camvid11_to_cityscapes", str(tmp / "m.csv"), "--json"
        ],
        "ontology suggest": [
            "ontology", "suggest", "--teacher", str(checkpoint), "--dataset", "folder",
            "--root", str(extra.root), "--sample", "3", "--out", str(tmp / "s.yaml"), "--json",
        ],
        "datasets list": ["datasets", "list", "--json"],
        "datasets prepare": [
            "datasets", "prepare", idd.dataset, "--root", str(idd.root),
            "--out", str(tmp / "idd_prepared"), "--jobs", "1", "--json",
        ],
        "datasets check": ["datasets", "check", "folder", "--root", str(src.root), "--json"],
        "models list": ["models", "list", "--json"],
        "models import": [
            "models", "import", str(state), "--spec", "tiny", "--out", str(tmp / "t.ckpt"),
            "--json",
        ],
        "evaluate": [
            "evaluate", "--dataset", "folder", "--root", str(src.root), "--split", "val",
            "--checkpoint", str(checkpoint), "--tta-scales", "1,1.5", "--json",
        ],
        "predict": [
            "predict", *map(str, images), "--checkpoint", str(checkpoint),
            "--out", str(tmp / "pred"), "--probabilities", "--tta", "--json",
        ],
        "pseudo-label": ["pseudo-label", str(tmp / "pseudo.yaml"), "--json"],
        "distill": ["distill", str(tmp / "distill.yaml"), "--json"],
        "demo": ["demo", "--quick", "--out", str(tmp / "demo"), "--json"],
        # the demo's run folder again, through the pipeline command (every stage done)
        "pipeline": ["pipeline", str(tmp / "demo" / "pipeline.yaml"), "--json"],
    }  # fmt: skip


def test_every_other_json_command_prints_one_document(world, trained, tmp_path: Path) -> None:
    checkpoint, _ = trained
    bad = {}
    for name, args in _cases(world, checkpoint, tmp_path).items():
        text = run_with_terminal_stderr(args)
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            bad[name] = f"{exc}: {text[:200]!r}"
    assert bad == {}


def test_version_names_the_package_version() -> None:
    from importlib.metadata import version

    import labelbridge

    out = subprocess.run([*CLI, "--version"], capture_output=True, text=True, check=True).stdout
    # the installed distribution's version is the package's (one number, pyproject reads it)
    assert version("labelbridge") == labelbridge.__version__
    assert out.startswith(f"labelbridge {labelbridge.__version__} (torch {torch.__version__}")
