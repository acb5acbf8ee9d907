"""``labelbridge demo``: the quick profile end to end (plumbing, files, resume, CLI) and,
marked slow, the full profile's claim: student with priors > Naive Student > teacher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from labelbridge.cli import app
from labelbridge.config.pipeline import load_pipeline_config
from labelbridge.demo import FULL, QUICK, build_demo_config, ordering_line, run_demo
from labelbridge.world import WorldSizes, generate_world

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory):
    return run_demo(tmp_path_factory.mktemp("demo"), seed=0, quick=True)


def test_quick_demo_writes_table_config_and_panels(quick_demo) -> None:
    out = quick_demo.out_dir
    result = quick_demo.pipeline
    assert [(r.model, r.iteration, r.arm) for r in result.rows] == [
        ("teacher", 0, None),
        ("student with priors", 1, "priors"),
        ("Naive Student (no priors)", 1, "no_priors"),
    ]
    assert result.evaluation == ["source_val", "wild"]
    for row in result.rows:
        assert set(row.miou) == {"source_val", "wild"}
        assert all(v is None or 0.0 <= v <= 1.0 for v in row.miou.values())
    md = (out / "run" / "results.md").read_text()
    assert "| model | round | source_val mIoU | wild mIoU |" in md
    assert "| Naive Student (no priors) | 1 |" in md
    data = json.loads((out / "run" / "results.json").read_text())
    assert [r["arm"] for r in data["rows"]] == [None, "priors", "no_priors"]
    # the priors arm changed some pixels of the extras, the Naive Student arm none
    assert data["pseudo_stats"]["iter1/pseudo_no_priors"]["extra_b"]["changed_by_priors"] == 0.0
    assert data["pseudo_stats"]["iter1/pseudo_priors"]["extra_b"]["changed_by_priors"] > 0.0
    # extra B's void is constrained to {sky, building}, never written as ignore
    assert data["pseudo_stats"]["iter1/pseudo_priors"]["extra_b"]["ignore"] == 0.0
    assert set(quick_demo.ordering) == {"source_val", "wild"}
    panels = sorted(p.name for p in (out / "panels").glob("*.png"))
    assert len(panels) == len(quick_demo.panels) > 0
    assert {p.split("_")[0] + "_" + p.split("_")[1] for p in panels} == {"extra_a", "extra_b"}
    report = quick_demo.report.read_text()
    for label, holds in quick_demo.ordering.items():
        teacher = next(r for r in data["rows"] if r["arm"] is None)["miou"][label]
        line = ordering_line(quick_demo.pipeline, label)
        assert f"- {line}" in report and f"teacher {100 * teacher:.1f}" in line
        assert line.endswith("the paper's ordering") == holds
    # the written config is a valid pipeline config of this very run
    cfg = load_pipeline_config(out / "pipeline.yaml")
    assert cfg.run_dir == str(out / "run")
    assert [e.name for e in cfg.extras] == ["extra_a", "extra_b"]


def test_quick_demo_rerun_resumes_through_the_cli(quick_demo) -> None:
    before = (quick_demo.out_dir / "run" / "teacher" / "final.ckpt").stat().st_mtime_ns
    res = CliRunner().invoke(app, ["demo", "--quick", "--out", str(quick_demo.out_dir), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["model"] for r in data["rows"]] == [
        "teacher",
        "student with priors",
        "Naive Student (no priors)",
    ]
    assert data["rows"][0]["miou"] == quick_demo.pipeline.rows[0].miou
    assert (quick_demo.out_dir / "run" / "teacher" / "final.ckpt").stat().st_mtime_ns == before
    res = CliRunner().invoke(
        app, ["pipeline", str(quick_demo.out_dir / "pipeline.yaml"), "--plan", "--json"]
    )
    assert res.exit_code == 0, res.output
    stages = json.loads(res.stdout)["stages"]
    assert [s["status"] for s in stages] == ["done"] * 5
    # more targets: the finished stages stay done, the new students are to do
    res = CliRunner().invoke(
        app,
        [
            "pipeline",
            str(quick_demo.out_dir / "pipeline.yaml"),
            "--plan",
            "--set",
            "targets=[hard,soft,partial]",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = [line.split() for line in res.output.splitlines() if line.strip()]
    assert [(w[0], w[1]) for w in lines] == [
        ("done", "teacher"),
        ("todo", "iter1/student_partial"),
        ("done", "iter1/pseudo_priors"),
        ("done", "iter1/student_priors"),
        ("todo", "iter1/student_priors_soft"),
        ("done", "iter1/pseudo_no_priors"),
        ("done", "iter1/student_no_priors"),
        ("todo", "iter1/student_no_priors_soft"),
    ]
    assert "train_student (soft labels)" in res.output


def test_python_m_labelbridge_is_the_command() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "labelbridge", "pipeline", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "targets" in proc.stdout and "--plan" in proc.stdout


def test_demo_config_file_matches_the_full_profile(tmp_path: Path) -> None:
    """configs/demo.yaml is the full demo's config with paths under labelbridge_demo/."""
    world = generate_world(
        tmp_path / "w", seed=0, sizes=WorldSizes(1, 1, 1, 1, 1), image_size=(32, 24)
    )
    built = build_demo_config(world, tmp_path / "run", FULL).model_dump(mode="json")
    shipped = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())

    def strip(node, root: str):
        if isinstance(node, dict):
            return {k: strip(v, root) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v, root) for v in node]
        return node.replace(root, "<root>") if isinstance(node, str) else node

    built = strip(built, str(tmp_path / "w"))
    built["run_dir"] = "<run>"
    shipped_cfg = load_pipeline_config(REPO / "configs" / "demo.yaml").model_dump(mode="json")
    shipped_cfg = strip(shipped_cfg, "labelbridge_demo/world")
    shipped_cfg["run_dir"] = "<run>"
    assert shipped["run_dir"] == "labelbridge_demo/run"
    assert shipped_cfg == built


def test_quick_profile_is_small() -> None:
    assert QUICK.sizes.extra_a * QUICK.image_size[0] * QUICK.image_size[1] < 20_000
    assert QUICK.epochs * QUICK.steps_per_epoch <= 2


@pytest.mark.slow
def test_full_demo_priors_beat_naive_student_and_teacher(tmp_path: Path) -> None:
    """The full profile (about 3 minutes on two idle cores). The student with priors beats
    both the teacher and the Naive Student on both sets, by a wide margin on the
    robustness set, where the paper's full ordering priors > Naive Student > teacher
    holds (the students train under colour jitter, the Naive Student recipe)."""
    result = run_demo(tmp_path / "demo", seed=0)
    table = result.pipeline.table
    for label in ("source_val", "wild"):
        teacher = result.pipeline.row(0, None).miou[label]
        naive = result.pipeline.row(1, "no_priors").miou[label]
        priors = result.pipeline.row(1, "priors").miou[label]
        assert priors > naive and priors > teacher, table
    wild_gain = (
        result.pipeline.row(1, "priors").miou["wild"] - result.pipeline.row(0, None).miou["wild"]
    )
    assert wild_gain > 0.10, table
    naive_wild = result.pipeline.row(1, "no_priors").miou["wild"]
    assert naive_wild > result.pipeline.row(0, None).miou["wild"], table
