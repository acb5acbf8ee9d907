"""The pipeline: stage order, run folder, state file, resume after an interruption, and a
real end-to-end run on a tiny synthetic world with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from labelbridge.config.pipeline import PipelineConfig, load_pipeline_config
from labelbridge.config.pseudo import PseudoLabelConfig
from labelbridge.config.train import TrainConfig
from labelbridge.errors import ConfigError
from labelbridge.pipeline import RunState, format_table, plan_stages, run_pipeline


def _config(run_dir: Path, world_root: Path, **changes) -> PipelineConfig:
    src = str(world_root / "source")
    data = {
        "run_dir": str(run_dir),
        "taxonomy": str(world_root / "source" / "taxonomy.yaml"),
        "source": [{"reader": "folder", "root": src, "split": "train"}],
        "val": [{"reader": "folder", "root": src, "split": "val", "label": "source_val"}],
        "evaluation": [
            {"reader": "folder", "root": src, "split": "val", "label": "source_val"},
            {"reader": "folder", "root": str(world_root / "wild"), "split": "val", "label": "wild"},
        ],
        "teacher": {
            "train": {
                "model": {"spec": "tiny"},
                "epochs": 1,
                "steps_per_epoch": 2,
                "batch_size": 2,
                "num_workers": 0,
                "augment": {"enabled": False},
                "trainer": {
                    "accelerator": "cpu",
                    "devices": 1,
                    "enable_progress_bar": False,
                    "num_sanity_val_steps": 0,
                },
            }
        },
        "extras": [
            {
                "name": "extra_a",
                "reader": "folder",
                "root": str(world_root / "extra_a"),
                "ontology": str(world_root / "mappings" / "extra_a_to_source.yaml"),
            },
            {
                "name": "extra_b",
                "reader": "folder",
                "root": str(world_root / "extra_b"),
                "ontology": str(world_root / "mappings" / "extra_b_to_source.yaml"),
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
    }
    data.update(changes)
    return PipelineConfig.model_validate(data)


class FakeStages:
    """Stand-ins for training, pseudo-labelling and evaluation that record their calls."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def train(self, cfg: TrainConfig) -> SimpleNamespace:
        out = Path(cfg.output)
        self.calls.append(("train", out.name))
        if self.fail_on == f"train:{out.name}":
            self.fail_on = None
            raise KeyboardInterrupt("killed")
        out.mkdir(parents=True, exist_ok=True)
        (out / "final.ckpt").write_text(
            f"{len(cfg.datasets)} datasets, finetune {cfg.finetune.enabled}"
        )
        return SimpleNamespace(
            final_checkpoint=out / "final.ckpt", best_checkpoint=out / "best.ckpt"
        )

    def pseudo(self, cfg: PseudoLabelConfig) -> list:
        out = Path(cfg.output)
        self.calls.append(("pseudo", out.name))
        if self.fail_on == f"pseudo:{out.name}":
            self.fail_on = None
            raise RuntimeError("boom")
        for entry in cfg.datasets:
            (out / entry.name).mkdir(parents=True, exist_ok=True)
            report = {
                "changed_by_priors": {"share_of_labelled": 0.25 if cfg.priors else 0.0},
                "pixels": {"ignore_share": 0.1},
            }
            (out / entry.name / "report.json").write_text(json.dumps(report))
        return []

    def evaluate(
        self, cfg: PipelineConfig, *, checkpoint: str | None, teacher=None
    ) -> tuple[dict, dict]:
        self.calls.append(("evaluate", Path(checkpoint).parent.name))
        score = {"teacher": 0.40, "student_no_priors": 0.45, "student_priors": 0.5}[
            Path(checkpoint).parent.name
        ]
        return {e.report_name: score for e in cfg.evaluation_sets}, {}

    def run(self, cfg: PipelineConfig):
        return run_pipeline(
            cfg, train_fn=self.train, pseudo_fn=self.pseudo, evaluate_fn=self.evaluate
        )


def _run_recording_configs(cfg: PipelineConfig, run: Path):
    """Run ``cfg`` on :class:`FakeStages`; the result and each stage's config by its
    folder relative to ``run``."""
    record: dict[str, object] = {}
    fake = FakeStages()

    def train(c: TrainConfig):
        record[Path(c.output).relative_to(run).as_posix()] = c
        return fake.train(c)

    def pseudo(c: PseudoLabelConfig):
        record[Path(c.output).relative_to(run).as_posix()] = c
        return fake.pseudo(c)

    result = run_pipeline(
        cfg, train_fn=train, pseudo_fn=pseudo, evaluate_fn=lambda c, **k: ({}, {})
    )
    return result, record


def test_plan_and_configs_handed_to_the_stages(tmp_path: Path, tiny_world) -> None:
    cfg = _config(tmp_path / "run", tiny_world.root, iterations=2)
    assert [s.name for s in plan_stages(cfg)] == [
        "teacher",
        "iter1/pseudo_priors",
        "iter1/student_priors",
        "iter1/pseudo_no_priors",
        "iter1/student_no_priors",
        "iter2/pseudo_priors",
        "iter2/student_priors",
        "iter2/pseudo_no_priors",
        "iter2/student_no_priors",
    ]
    _, seen = _run_recording_configs(cfg, tmp_path / "run")
    teacher = seen["teacher"]
    assert [d.root for d in teacher.datasets] == [str(tiny_world.root / "source")]
    assert teacher.finetune.enabled is False  # a source-only teacher is not fine-tuned
    student = seen["iter1/student_priors"]
    assert student.finetune.enabled is True and student.finetune.epochs == 1
    assert [
        d.labels
        if d.labels == "gt"
        else Path(d.labels.pseudo).relative_to(tmp_path / "run").as_posix()
        for d in student.datasets
    ] == ["gt", "iter1/pseudo_priors/extra_a", "iter1/pseudo_priors/extra_b"]
    assert [d.report_name for d in student.val] == ["source_val"]
    p1, p1n = seen["iter1/pseudo_priors"], seen["iter1/pseudo_no_priors"]
    assert p1.priors is True and p1n.priors is False
    assert p1.teacher.checkpoint == str(tmp_path / "run" / "teacher" / "final.ckpt")
    # round 2: each arm's round-1 student is its teacher
    assert seen["iter2/pseudo_priors"].teacher.checkpoint == str(
        tmp_path / "run" / "iter1/student_priors/final.ckpt"
    )
    assert seen["iter2/pseudo_no_priors"].teacher.checkpoint == str(
        tmp_path / "run" / "iter1/student_no_priors/final.ckpt"
    )


def test_full_run_writes_table_and_rerun_skips_everything(tmp_path: Path, tiny_world) -> None:
    cfg = _config(tmp_path / "run", tiny_world.root)
    fake = FakeStages()
    result = fake.run(cfg)
    assert [c for c in fake.calls if c[0] != "evaluate"] == [
        ("train", "teacher"),
        ("pseudo", "pseudo_priors"),
        ("train", "student_priors"),
        ("pseudo", "pseudo_no_priors"),
        ("train", "student_no_priors"),
    ]
    assert [(r.model, r.iteration, r.miou["wild"]) for r in result.rows] == [
        ("teacher", 0, 0.40),
        ("student with priors", 1, 0.5),
        ("Naive Student (no priors)", 1, 0.45),
    ]
    md = (tmp_path / "run" / "results.md").read_text()
    assert "| student with priors | 1 | 50.0 (+10.0) | 50.0 (+10.0) |" in md
    assert "| iter1/pseudo_priors | extra_a | 25.0% | 10.0% |" in md
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert data["evaluation"] == ["source_val", "wild"]
    assert data["rows"][2]["miou"] == {"source_val": 0.45, "wild": 0.45}
    state = RunState(tmp_path / "run" / "state.json")
    assert all(state.is_done(s.name) for s in plan_stages(cfg))

    again = FakeStages()
    result2 = again.run(cfg)
    assert again.calls == [] and result2.executed == []
    assert result2.table == result.table


def test_interrupted_stage_resumes_without_redoing_finished_ones(
    tmp_path: Path, tiny_world
) -> None:
    cfg = _config(tmp_path / "run", tiny_world.root)
    first = FakeStages(fail_on="pseudo:pseudo_no_priors")
    with pytest.raises(RuntimeError, match="boom"):
        first.run(cfg)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["stages"]["iter1/student_priors"]["status"] == "done"
    assert state["stages"]["iter1/pseudo_no_priors"]["status"] == "running"
    assert "iter1/student_no_priors" not in state["stages"]
    stamp = (tmp_path / "run" / "teacher" / "final.ckpt").stat().st_mtime_ns

    second = FakeStages(fail_on="train:student_no_priors")  # killed again, inside training
    with pytest.raises(KeyboardInterrupt):
        second.run(cfg)
    assert [c for c in second.calls if c[0] != "evaluate"] == [
        ("pseudo", "pseudo_no_priors"),
        ("train", "student_no_priors"),
    ]

    third = FakeStages()
    result = third.run(cfg)
    assert [c for c in third.calls if c[0] != "evaluate"] == [("train", "student_no_priors")]
    assert result.executed == ["iter1/student_no_priors", "evaluate/iter1/student_no_priors"]
    assert (tmp_path / "run" / "teacher" / "final.ckpt").stat().st_mtime_ns == stamp
    assert (tmp_path / "run" / "results.md").is_file()


def test_changed_config_of_a_finished_stage_is_refused(tmp_path: Path, tiny_world) -> None:
    cfg = _config(tmp_path / "run", tiny_world.root)
    FakeStages().run(cfg)
    changed = _config(
        tmp_path / "run",
        tiny_world.root,
        pseudo={"arms": ["priors"], "tta": {"scales": [0.5, 1.0]}},
    )
    with pytest.raises(
        ConfigError,
        match="stage 'iter1/pseudo_priors' was completed with a different configuration",
    ):
        FakeStages().run(changed)
    # a changed evaluation list only re-evaluates
    fewer = _config(
        tmp_path / "run",
        tiny_world.root,
        evaluation=[
            {
                "reader": "folder",
                "root": str(tiny_world.root / "wild"),
                "split": "val",
                "label": "wild",
            }
        ],
    )
    fake = FakeStages()
    result = fake.run(fewer)
    assert {c[0] for c in fake.calls} == {"evaluate"} and result.evaluation == ["wild"]


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "run_dir: r\ntaxonomy: camvid11\nsource: [{name: camvid}]\nval: [{name: camvid}]\n"
        "teacher: {train: {model: {spec: tiny}, output: x}}\nextras: [{name: a, reader: idd_lite, ontology: m}]\n"
    )
    with pytest.raises(
        ConfigError, match=r"p.yaml:5: teacher.train: Value error, \['output'\] are filled in"
    ):
        load_pipeline_config(path)
    path.write_text(
        "run_dir: r\ntaxonomy: camvid11\nsource: [{name: camvid}]\nval: [{name: camvid}]\n"
        "teacher: {checkpoint: t.ckpt}\nextras: [{name: a, reader: idd_lite, ontology: m}]\n"
    )
    with pytest.raises(ConfigError, match="a 'student' training section is needed"):
        load_pipeline_config(path)
    path.write_text(
        "run_dir: r\ntaxonomy: camvid11\nsource: [{name: camvid}]\nval: [{name: camvid}]\n"
        "teacher: {checkpoint: t.ckpt}\nstudent: {model: {spec: tiny}}\n"
        "extras: [{name: a, reader: idd_lite, ontology: m}]\npseudo: {arms: [priors, priors]}\n"
    )
    with pytest.raises(ConfigError, match="arms must not repeat"):
        load_pipeline_config(path)


def test_format_table_hand_computed() -> None:
    from labelbridge.pipeline import ModelResult

    rows = [
        ModelResult("teacher", 0, None, "t", {"a": 0.5, "b": None}),
        ModelResult("student with priors", 1, "priors", "s", {"a": 0.5625, "b": 0.25}),
    ]
    assert format_table(rows, ["a", "b"]).splitlines() == [
        "| model | round | a mIoU | b mIoU |",
        "|---|---:|---:|---:|",
        "| teacher | 0 | 50.0 | n/a |",
        "| student with priors | 1 | 56.2 (+6.2) | 25.0 |",
    ]


def test_dumped_config_loads_back_to_the_same_config(tmp_path: Path, tiny_world) -> None:
    from labelbridge.config.base import dump_config

    cfg = _config(tmp_path / "run", tiny_world.root)
    dump_config(cfg, tmp_path / "p.yaml")
    again = load_pipeline_config(tmp_path / "p.yaml")
    assert again.model_dump() == cfg.model_dump()
    assert again.teacher_section.finetune.enabled is False
    assert again.student_section.finetune.epochs == 1


def test_given_teacher_checkpoint_is_used_without_training(tmp_path: Path, tiny_world) -> None:
    ckpt = tmp_path / "teacher" / "given.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_text("weights")
    cfg = _config(
        tmp_path / "run",
        tiny_world.root,
        teacher={"checkpoint": str(ckpt)},
        student={"model": {"spec": "tiny"}, "epochs": 1},
    )
    assert [s.name for s in plan_stages(cfg)][0] == "iter1/pseudo_priors"
    teachers = []
    fake = FakeStages()

    def pseudo(c: PseudoLabelConfig):
        teachers.append(c.teacher.checkpoint)
        return fake.pseudo(c)

    result = run_pipeline(cfg, train_fn=fake.train, pseudo_fn=pseudo, evaluate_fn=fake.evaluate)
    assert teachers == [str(ckpt), str(ckpt)]
    assert ("train", "teacher") not in fake.calls
    assert result.rows[0].checkpoint == str(ckpt) and result.rows[0].miou["wild"] == 0.40


def test_targets_plan_one_student_per_target_with_its_labels(tmp_path: Path, tiny_world) -> None:
    cfg = _config(
        tmp_path / "run",
        tiny_world.root,
        targets=["hard", "soft", "partial", "hard+partial"],
        iterations=2,
    )
    assert [(s.name, s.target) for s in plan_stages(cfg) if s.kind != "pseudo"] == [
        ("teacher", None),
        ("iter1/student_partial", "partial"),
        ("iter1/student_priors", "hard"),
        ("iter1/student_priors_soft", "soft"),
        ("iter1/student_priors_hard_partial", "hard+partial"),
        ("iter1/student_no_priors", "hard"),
        ("iter1/student_no_priors_soft", "soft"),
        ("iter1/student_no_priors_hard_partial", "hard+partial"),
        ("iter2/student_priors", "hard"),
        ("iter2/student_priors_soft", "soft"),
        ("iter2/student_priors_hard_partial", "hard+partial"),
        ("iter2/student_no_priors", "hard"),
        ("iter2/student_no_priors_soft", "soft"),
        ("iter2/student_no_priors_hard_partial", "hard+partial"),
    ]
    result, seen = _run_recording_configs(cfg, tmp_path / "run")
    mapping_a = str(tiny_world.root / "mappings" / "extra_a_to_source.yaml")

    def extra_a(stage: str) -> dict:
        return seen[stage].datasets[1].labels.model_dump(exclude_defaults=True)

    pseudo_a = str(tmp_path / "run" / "iter1/pseudo_priors/extra_a")
    assert extra_a("iter1/student_priors") == {"pseudo": pseudo_a}
    assert extra_a("iter1/student_priors_soft") == {"pseudo": pseudo_a, "soft": True}
    assert extra_a("iter1/student_priors_hard_partial") == {
        "pseudo": pseudo_a,
        "partial": mapping_a,
    }
    assert extra_a("iter1/student_partial") == {"partial": mapping_a}
    assert seen["iter1/student_partial"].datasets[0].labels == "gt"
    # soft students read soft labels: the pseudo-label stages write them
    assert seen["iter1/pseudo_priors"].outputs.soft_labels.enabled is True
    # round 2 is taught by the hard student of the arm
    assert seen["iter2/pseudo_priors"].teacher.checkpoint == str(
        tmp_path / "run" / "iter1/student_priors/final.ckpt"
    )
    assert [r.model for r in result.rows[:4]] == [
        "teacher",
        "student on partial labels (no teacher)",
        "student with priors, round 1",
        "student with priors (soft labels), round 1",
    ]
    assert result.row(1, None, "partial").checkpoint.endswith("student_partial/final.ckpt")
    assert result.row(1, "priors", "soft").checkpoint.endswith("student_priors_soft/final.ckpt")


def test_partial_targets_alone_need_no_pseudo_labels(tmp_path: Path, tiny_world) -> None:
    cfg = _config(tmp_path / "run", tiny_world.root, targets=["partial"])
    assert [s.name for s in plan_stages(cfg)] == ["teacher", "iter1/student_partial"]
    with pytest.raises(ValueError, match="must not repeat"):
        _config(tmp_path / "run", tiny_world.root, targets=["hard", "hard"])
