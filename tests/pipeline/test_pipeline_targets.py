"""A real run of the four students side by side (hard, soft, partial, hard + partial
labels) on a tiny synthetic world, and the pieces each of them learns from."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from labelbridge.config.pipeline import PipelineConfig
from labelbridge.pipeline import run_pipeline
from labelbridge.world import WorldSizes, generate_world

TARGETS = ["hard", "soft", "partial", "hard+partial"]


def _training(**changes: object) -> dict:
    data = {
        "model": {"spec": "tiny"},
        "epochs": 1,
        "steps_per_epoch": 3,
        "batch_size": 2,
        "num_workers": 0,
        "seed": 3,
        "augment": {"enabled": True, "scale_range": [0.75, 1.25], "crop": [40, 56]},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
        },
    }
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def four_arm_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("world")
    world = generate_world(root, seed=2, sizes=WorldSizes.tiny(), image_size=(64, 48))
    src = str(world.root / "source")
    cfg = PipelineConfig.model_validate(
        {
            "run_dir": str(root / "run"),
            "taxonomy": str(world.root / "source" / "taxonomy.yaml"),
            "source": [{"reader": "folder", "root": src, "split": "train"}],
            "val": [{"reader": "folder", "root": src, "split": "val", "label": "source_val"}],
            "teacher": {"train": _training()},
            "student": _training(partial_loss={"weight": 0.5}),
            "extras": [
                {
                    "name": name,
                    "reader": "folder",
                    "root": str(world.root / name),
                    "ontology": str(world.root / "mappings" / f"{name}_to_source.yaml"),
                }
                for name in ("extra_a", "extra_b")
            ],
            "pseudo": {
                "arms": ["priors"],
                "tta": {"flip": False, "scales": [1.0]},
                "device": "cpu",
                "num_workers": 0,
                "outputs": {"previews": 0, "soft_labels": {"top_k": 2}},
            },
            "targets": TARGETS,
            "finetune": {"enabled": True, "epochs": 1},
        }
    )
    return cfg, run_pipeline(cfg)


def test_four_students_train_side_by_side_into_one_table(four_arm_run) -> None:
    cfg, result = four_arm_run
    run = cfg.run_path
    titles = [r.model for r in result.rows]
    assert titles == [
        "teacher",
        "student on partial labels (no teacher)",
        "student with priors",
        "student with priors (soft labels)",
        "student with priors (hard + partial labels)",
    ]
    for r in result.rows[1:]:
        assert Path(r.checkpoint).is_file()
        assert 0.0 <= r.miou["source_val"] <= 1.0
    table = (run / "results.md").read_text(encoding="utf-8")
    for title in titles:
        assert f"| {title} | " in table
    # the soft student read the top-2 soft labels the pseudo-label stage wrote
    soft_files = sorted((run / "iter1/pseudo_priors/extra_a").rglob("*_soft.npz"))
    assert soft_files
    # each student's stage 1 logged the terms it learns from
    expected = {
        "iter1/student_priors": {"train/loss"},
        "iter1/student_priors_soft": {"train/loss", "train/soft", "train/hard"},
        "iter1/student_partial": {"train/loss", "train/partial", "train/hard"},
        "iter1/student_priors_hard_partial": {"train/loss", "train/partial", "train/hard"},
    }
    for stage, keys in expected.items():
        logged = set()
        for path in (run / stage / "train").rglob("metrics.csv"):
            with path.open() as f:
                logged |= set(next(csv.reader(f)))
        assert keys <= logged, (stage, sorted(logged))
    hp = json.loads((run / "state.json").read_text())["stages"]
    assert all(
        hp[f"iter1/{s}"]["status"] == "done"
        for s in (
            "student_partial",
            "student_priors",
            "student_priors_soft",
            "student_priors_hard_partial",
        )
    )


def test_rerun_of_the_four_arm_run_skips_every_stage(four_arm_run) -> None:
    cfg, first = four_arm_run
    again = run_pipeline(cfg)
    assert again.executed == []
    assert [r.miou for r in again.rows] == [r.miou for r in first.rows]
