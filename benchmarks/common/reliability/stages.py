"""Stages run by the real console script in a working folder: :func:`run_cli`, the three
stage set-ups (:data:`SETUPS`: pseudo-label, train, pipeline), a run to the end, and the
audit of a stage's outputs for partial files (:func:`audit_outputs`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from .pseudo_cases import PSEUDO_MAPPING, tiny_checkpoint

#: Console script of the package.
CLI = "labelbridge"


def run_cli(
    args: list[str], *, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real console script ``labelbridge ARGS`` in ``cwd`` (one torch thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    exe = shutil.which(CLI) or CLI
    return subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


#: Files left by atomic writers while they write (they must not survive a resume).
TEMP_PATTERNS: tuple[str, ...] = ("*.lbtmp", "*.tmp", ".*.tmp*")


def audit_outputs(folder: Path, *, allow_temp: bool = False) -> list[str]:
    """Problems with the files under ``folder``: zero-byte files, leftover temporary
    files (unless ``allow_temp``), and files of a known type that do not parse (PNG,
    NPZ, JSON, JSON lines, YAML, checkpoints). With ``allow_temp`` (right after a kill)
    an append-only manifest may also be empty or end in a torn line: the next run cuts
    the tail and appends."""
    import torch

    problems = []
    if not folder.exists():
        return problems
    temp = {p for pattern in TEMP_PATTERNS for p in folder.rglob(pattern) if p.is_file()}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if path in temp:
            if not allow_temp:
                problems.append(f"{rel}: temporary file left behind")
            continue
        if path.stat().st_size == 0:
            if not (allow_temp and path.suffix == ".jsonl"):  # an append-only log with no line yet
                problems.append(f"{rel}: zero bytes")
            continue
        try:
            if path.suffix == ".png":
                with Image.open(path) as im:
                    im.load()
            elif path.suffix == ".npz":
                with np.load(path) as npz:
                    [npz[k] for k in npz.files]
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".jsonl":
                lines = path.read_text(encoding="utf-8").splitlines()
                for i, line in enumerate(lines):
                    try:
                        json.loads(line)
                    except json.JSONDecodeError:
                        if not (allow_temp and i == len(lines) - 1):
                            raise
            elif path.suffix in (".yaml", ".yml"):
                yaml.safe_load(path.read_text(encoding="utf-8"))
            elif path.suffix in (".ckpt", ".pth"):
                torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
            problems.append(f"{rel}: does not parse ({type(exc).__name__}: {exc})")
    return problems


def make_camvid_images(
    root: Path, *, count: int, size: tuple[int, int] = (64, 48), seed: int = 0
) -> Path:
    """A CamVid-layout split ``train`` of ``count`` random images with random labels."""
    rng = np.random.default_rng(seed)
    w, h = size
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "trainannot").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            root / "train" / f"f{i:03d}.png"
        )
        Image.fromarray(rng.integers(0, 12, (h, w), dtype=np.uint8), mode="L").save(
            root / "trainannot" / f"f{i:03d}.png"
        )
    return root


@dataclass
class StageSetup:
    """A stage run by the CLI in a working folder.

    Attributes:
        stage: ``pseudo-label``, ``train`` or ``pipeline``.
        args: CLI arguments (relative to the working folder).
        output: the folder the stage writes (relative to the working folder).
    """

    stage: str
    args: list[str]
    output: str


def setup_pseudo(work: Path) -> StageSetup:
    """Teacher checkpoint + 120 CamVid-layout images; flip and three scales, all outputs."""
    make_camvid_images(work / "data", count=120)
    tiny_checkpoint(work / "teacher.ckpt", "cityscapes")
    cfg = {
        "teacher": {"checkpoint": "teacher.ckpt"},
        "datasets": [
            {
                "name": "cv",
                "reader": "camvid",
                "root": "data",
                "split": "train",
                "ontology": PSEUDO_MAPPING,
            }
        ],
        "tta": {"flip": True, "scales": [0.5, 1.0, 1.5]},
        "outputs": {
            "confidence": True,
            "soft_labels": {"enabled": True, "top_k": 3},
            "previews": 2,
        },
        "output": "out",
        "device": "cpu",
        "num_workers": 2,
        "threads": 1,
    }
    (work / "pseudo.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return StageSetup("pseudo-label", ["pseudo-label", "pseudo.yaml", "--no-progress"], "out")


def setup_train(work: Path) -> StageSetup:
    """The toy 3-class folder dataset; 6 epochs of 4 steps + a 2-epoch fine-tune, with
    random augmentation and a data-loading worker (both must resume bit-exactly)."""
    from benchmarks.common.layouts.toydata import make_toy_dataset

    make_toy_dataset(work / "toy", splits={"train": 12, "val": 3})
    cfg = {
        "taxonomy": "toy/taxonomy.yaml",
        "datasets": [{"name": "folder", "root": "toy", "split": "train"}],
        "val": [{"name": "folder", "root": "toy", "split": "val", "label": "toy"}],
        "model": {"spec": "tiny"},
        "optimizer": {"lr": 0.01},
        "batch_size": 4,
        "steps_per_epoch": 4,
        "epochs": 6,
        "num_workers": 1,
        "augment": {"scale_range": [0.75, 1.5], "crop": [32, 48]},
        "early_stopping": {"enabled": False},
        "finetune": {"enabled": True, "epochs": 2},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
        },
        "output": "run",
    }
    (work / "train.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return StageSetup("train", ["train", "train.yaml"], "run")


def setup_pipeline(work: Path) -> StageSetup:
    """The tiny synthetic world; teacher, both pseudo-label arms, both students."""
    from labelbridge.world import WorldSizes, generate_world

    generate_world(work / "world", seed=1, sizes=WorldSizes.tiny(), image_size=(64, 48))
    train = {
        "model": {"spec": "tiny"},
        "epochs": 2,
        "steps_per_epoch": 2,
        "batch_size": 2,
        "num_workers": 0,
        "augment": {"enabled": False},
        "early_stopping": {"enabled": False},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
        },
    }
    cfg = {
        "run_dir": "run",
        "taxonomy": "world/source/taxonomy.yaml",
        "source": [{"name": "folder", "root": "world/source", "split": "train"}],
        "val": [{"name": "folder", "root": "world/source", "split": "val", "label": "source_val"}],
        "evaluation": [
            {"name": "folder", "root": "world/source", "split": "val", "label": "source_val"},
            {"name": "folder", "root": "world/wild", "split": "val", "label": "wild"},
        ],
        "teacher": {"train": train},
        "extras": [
            {
                "name": "extra_a",
                "reader": "folder",
                "root": "world/extra_a",
                "ontology": "world/mappings/extra_a_to_source.yaml",
            },
            {
                "name": "extra_b",
                "reader": "folder",
                "root": "world/extra_b",
                "ontology": "world/mappings/extra_b_to_source.yaml",
            },
        ],
        "pseudo": {
            "arms": ["priors", "no_priors"],
            "tta": {"flip": True, "scales": [1.0]},
            "device": "cpu",
            "num_workers": 0,
            "outputs": {"previews": 1},
        },
        "finetune": {"enabled": True, "lr_factor": 0.1, "epochs": 1},
        "threads": 1,
    }
    (work / "pipeline.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return StageSetup("pipeline", ["pipeline", "pipeline.yaml"], "run")


SETUPS: dict[str, Callable[[Path], StageSetup]] = {
    "pseudo-label": setup_pseudo,
    "train": setup_train,
    "pipeline": setup_pipeline,
}


def run_to_end(setup: StageSetup, work: Path, timeout: float = 1800) -> float:
    """Run the stage to completion; returns its wall time in seconds.

    Raises:
        RuntimeError: non-zero exit (with the end of stderr).
    """
    start = time.perf_counter()
    proc = run_cli(setup.args, cwd=work, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"labelbridge {' '.join(setup.args)} failed ({proc.returncode}): {proc.stderr[-2000:]}"
        )
    return time.perf_counter() - start
