"""Every benchmark runs as a module (``python -m benchmarks.NAME --help``), and smoke runs
of the real-data benchmarks U1, U2 and distillation (``--smoke``: a few images, one step
per training stage) end to end: every arm trains, pseudo-labels and evaluates, and the
results section and JSON are written (to a temporary file, never benchmarks/results.md;
the distillation smoke run writes no section).

Each smoke run needs the real data and weights in ../shared; those tests skip without them.
Each smoke run takes ~15-40 s on an idle 2-core machine (minutes when the machine is busy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Every benchmark script, run as ``python -m benchmarks.NAME`` from the repository root.
BENCHMARKS = sorted(p.stem for p in (REPO / "benchmarks").glob("[a-z]*.py"))


@pytest.mark.parametrize("module", BENCHMARKS)
def test_every_benchmark_runs_as_a_module(module: str) -> None:
    """``--help`` of each benchmark imports it and its helpers without editing the module
    search path and names the module form in its usage line."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"usage: python -m benchmarks.{module} ")


def _run(module: str, tmp_path: Path) -> tuple[str, dict]:
    results = tmp_path / "results.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            f"benchmarks.{module}",
            "--smoke",
            "--no-figures",
            "--results",
            str(results),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    name = "results_u1_smoke.json" if module.startswith("u1") else "results_u2_smoke.json"
    return results.read_text(), json.loads((tmp_path / name).read_text())


def _check_mious(results: dict, arms: list[str], sets: list[str]) -> None:
    assert list(results) == arms
    for arm in arms:
        for ev in results[arm]:
            for s in sets:
                value = ev[s]["mIoU"]
                assert value is None or 0.0 <= value <= 1.0, (arm, s, value)
                assert ev[s]["per_class_iou"], (arm, s)


def test_u2_smoke_writes_section(
    camvid_root: Path, idd_lite_root: Path, weights_dir: Path, tmp_path: Path
) -> None:
    text, data = _run("u2_cityscapes_teacher", tmp_path)
    assert (
        "<!-- section:u2-cityscapes-teacher -->" in text
        and "<!-- /section:u2-cityscapes-teacher -->" in text
    )
    assert "| student with priors (hard labels) | 1 |" in text
    assert "| student with priors (soft labels, top 3) | 1 |" in text
    arms = ["teacher", "no_priors", "priors", "soft", "partial", "hard_partial"]
    _check_mious(data["results"], arms, ["camvid_test", "idd_val"])
    # IDD-Lite val in IDD level-1 (7 classes), CamVid test in CamVid-11 (11 classes)
    assert len(data["results"]["teacher"][0]["idd_val"]["per_class_iou"]) == 7
    assert len(data["results"]["teacher"][0]["camvid_test"]["per_class_iou"]) == 11
    stats = data["pseudo_labels"]
    # the Naive Student's labels are never changed by priors; with priors, every labelled
    # pixel agrees with the extra ground truth's allowed set where the teacher did not
    assert stats["no_priors / camvid_train"]["changed_by_priors"] == 0.0
    assert stats["priors / camvid_train"]["changed_by_priors"] > 0.0
    assert (
        stats["priors / camvid_train"]["agreement_pseudo"]
        >= stats["priors / camvid_train"]["agreement_teacher"]
    )
    assert stats["priors / idd_lite_train"]["images"] == 3


def test_u1_smoke_writes_section(
    camvid_root: Path, idd_lite_root: Path, weights_dir: Path, tmp_path: Path
) -> None:
    text, data = _run("u1_camvid_idd", tmp_path)
    assert "<!-- section:u1-camvid-idd -->" in text and "<!-- /section:u1-camvid-idd -->" in text
    assert "| student with priors + source fine-tune | 1 |" in text
    assert "| student on partial labels (no teacher) + source fine-tune | 1 |" in text
    _check_mious(
        data["results"],
        [
            "init",
            "teacher",
            "naive",
            "naive_ft",
            "priors",
            "priors_ft",
            "soft_ft",
            "partial_ft",
            "hard_partial_ft",
        ],
        ["camvid_test", "idd_val"],
    )
    # every model starts from the Cityscapes weights with the classifier mapped
    assert "| initial model (Cityscapes weights, classifier mapped" in text
    assert "`model.classifier_from`" in text
    stats = data["pseudo_labels"]
    assert stats["seed 0 / round 1 / no_priors"]["changed_by_priors"] == 0.0
    assert (
        stats["seed 0 / round 1 / priors"]["agreement_pseudo"]
        >= stats["seed 0 / round 1 / priors"]["agreement_teacher"]
    )


def _distill(tmp_path: Path, *extra: str, work: str = "work") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.distill_compact", "--smoke"]
        + ["--threads", "1", "--work", str(tmp_path / work), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )


def _distill_smoke(tmp_path: Path, *extra: str) -> str:
    proc = _distill(tmp_path, *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_distill_compact_smoke_and_a_checkpoint_teacher(
    camvid_root: Path, idd_lite_root: Path, weights_dir: Path, tmp_path: Path
) -> None:
    out = _distill_smoke(tmp_path, "--kd", "0.5", "--feat", "0")
    assert "| teacher s=2.0 (zero-shot) |" in out
    assert "| compact s=0.5, no_distill |" in out
    assert "Distilled (distilled_kd0.5_feat0_1x2steps) minus no_distill" in out
    runs = tmp_path / "work" / "smoke" / "runs"
    first = sorted(p.name for p in runs.iterdir())
    assert len(first) == 2
    # a labelbridge checkpoint of the Cityscapes taxonomy as the teacher (here the smoke
    # run's own compact student): its own pseudo-labels and run folders, named in the table
    teacher = next(runs.glob("no_distill_*")) / "final.ckpt"
    out = _distill_smoke(tmp_path, "--kd", "0.5", "--feat", "0", "--teacher", str(teacher))
    assert "| teacher final |" in out
    assert "distilled_kd0.5_feat0_teacher_final_1x2steps" in out
    assert "which also made every pseudo-label of both arms" in out
    assert len(list(runs.iterdir())) == 4  # no run of the first teacher was reused
    pseudo = sorted(p.name for p in (tmp_path / "work" / "smoke").glob("pseudo*"))
    assert pseudo[0] == "pseudo" and pseudo[1].startswith("pseudo_teacher_")
    # a file that is not a checkpoint: a usage error naming it, before any work
    bad = _distill(tmp_path, "--teacher", str(REPO / "README.md"), work="bad")
    assert bad.returncode == 2
    assert "--teacher: " in bad.stderr and "README.md: not a PyTorch checkpoint" in bad.stderr
    # an invalid setting is refused by the run config's validation, before any work
    bad = _distill(tmp_path, "--teacher-scale", "0", work="bad")
    assert bad.returncode == 2
    assert "invalid run settings: teacher.input_scale: Input should be greater than 0" in bad.stderr
    assert not (tmp_path / "bad" / "smoke" / "pseudo").exists()


def test_tour_times_measures_and_resumes(
    camvid_root: Path, idd_lite_root: Path, weights_dir: Path, tmp_path: Path
) -> None:
    """The cheapest tour command measured through the console script; a second run finds
    it in the store and does not run it again."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.tour_times",
        "--only",
        "check",
        "--no-results",
        "--work",
        str(tmp_path),
    ]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    stored = json.loads((tmp_path / "tour_times.json").read_text())
    assert list(stored) == ["check"] and stored["check"]["seconds"][0] > 0
    assert (
        "| `labelbridge datasets check camvid --root .../camvid --json` | the command"
        in first.stdout
    )
    assert "not measured" in first.stdout  # the others were not asked for
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "check: running" not in again.stdout
    assert json.loads((tmp_path / "tour_times.json").read_text()) == stored
