"""End-to-end distillation on the synthetic world: tiny teacher and student, a few steps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from labelbridge.cli import app
from labelbridge.config.distill import DistillConfig, load_distill_config
from labelbridge.distill import DistillationModule, build_distill_module, run_distillation
from labelbridge.distill.data import build_target_sets, target_collate
from labelbridge.distill.functional import TARGET_LABEL_OFFSET
from labelbridge.errors import ConfigError
from labelbridge.models import TinySegNet
from labelbridge.taxonomy import load_taxonomy
from labelbridge.world import WorldSizes, generate_world

ALL_TERMS = ["ce_source", "ce_source_aux", "kd_final", "kd_aux", "feat", "ce_pseudo", "adv", "disc"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return generate_world(
        tmp_path_factory.mktemp("world"), seed=0, sizes=WorldSizes.tiny(), image_size=(64, 48)
    )


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory: pytest.TempPathFactory, world) -> Path:
    torch.manual_seed(1)
    num_classes = load_taxonomy(world.source_taxonomy).num_classes
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.save(TinySegNet(num_classes, width=8).state_dict(), path)
    return path


def _config(world, teacher_file: Path, out: Path, **overrides) -> DistillConfig:
    src, extra_a, extra_b = (
        world.datasets["source"],
        world.datasets["extra_a"],
        world.datasets["extra_b"],
    )
    data = {
        "taxonomy": str(world.source_taxonomy),
        "teacher": {"model": "tiny:width=8", "weights": str(teacher_file)},
        "student": {"spec": "tiny:width=4"},
        "source": [{"name": "folder", "root": str(src.root), "split": "train"}],
        "target": [
            {
                "name": "folder",
                "root": str(extra_a.root),
                "split": "train",
                "ontology": str(extra_a.mapping),
            },
            {"name": "folder", "root": str(extra_b.root), "split": "train"},  # no ground truth used
        ],
        "val": [{"name": "folder", "root": str(src.root), "split": "val", "label": "source_val"}],
        "losses": {"feat": 1.0, "adv": 0.01},
        "temperature": 2.0,
        "pseudo_threshold": 0.0,
        "discriminator_width": 4,
        "batch_size": 2,
        "val_batch_size": 2,
        "epochs": 2,
        "steps_per_epoch": 2,
        "num_workers": 0,
        "augment": {"scale_range": [0.75, 1.25], "crop": [40, 56]},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
        },
        "output": str(out),
    }
    data.update(overrides)
    return DistillConfig.model_validate(data)


def test_target_sets_encode_labels_and_domains(world, teacher_file: Path, tmp_path: Path) -> None:
    cfg = _config(world, teacher_file, tmp_path / "run")
    taxonomy = load_taxonomy(cfg.taxonomy)
    sets, ontologies = build_target_sets(cfg.target, taxonomy=taxonomy, resize=None)
    assert ontologies == [str(world.datasets["extra_a"].mapping), None]
    image, labels, domain = sets[0][0]
    raw = sets[0].reader.load(0).label
    assert domain == 0 and image.dtype == torch.uint8
    assert torch.equal(labels, torch.from_numpy(raw).long() + TARGET_LABEL_OFFSET)
    _, labels_b, domain_b = sets[1][0]
    assert domain_b == 1 and bool((labels_b == TARGET_LABEL_OFFSET).all())
    images, lab, doms = target_collate([sets[0][0], sets[1][0]])
    assert images.shape[0] == 2 and doms.tolist() == [0, 1]


def test_module_keeps_teacher_out_of_state_dict(world, teacher_file: Path, tmp_path: Path) -> None:
    cfg = _config(world, teacher_file, tmp_path / "run")
    taxonomy = load_taxonomy(cfg.taxonomy)
    module = build_distill_module(
        cfg, taxonomy=taxonomy, val_specs=[], target_ontologies=[None, None]
    )
    assert isinstance(module, DistillationModule)
    keys = list(module.state_dict())
    assert all(k.startswith(("model.", "task.terms.", "task.discriminator.")) for k in keys), keys
    teacher_ids = {id(p) for p in module.teacher.parameters()}
    assert teacher_ids.isdisjoint(id(p) for p in module.parameters())
    assert all(not p.requires_grad for p in module.teacher.parameters())
    # the teacher holds the saved weights, the student does not
    saved = torch.load(teacher_file)
    assert torch.equal(module.teacher.state_dict()["head.weight"], saved["head.weight"])
    assert module.loss_names == ALL_TERMS


def test_config_errors(world, teacher_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need target datasets"):
        _config(world, teacher_file, tmp_path / "run", target=[])
    path = tmp_path / "bad.yaml"
    path.write_text(
        "taxonomy: x\nteacher: {checkpoint: a}\nstudent: {spec: tiny}\nsource: [{name: camvid}]\nval: [{name: camvid}]\noutput: o\nlosess: {}\n"
    )
    with pytest.raises(ConfigError, match="losess"):
        load_distill_config(path)


def test_distillation_runs_logs_every_term_and_exports_student(
    world, teacher_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cfg = _config(world, teacher_file, out)
    result = run_distillation(cfg)
    assert result.loss_terms == ALL_TERMS
    # every term was logged to CSV (and TensorBoard wrote its event file)
    metrics_csv = out / "distill" / "logs" / "csv" / "metrics.csv"
    with metrics_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    header = set(rows[0])
    for term in ALL_TERMS + ["loss"]:
        assert f"train/{term}" in header, header
        values = [float(r[f"train/{term}"]) for r in rows if r.get(f"train/{term}")]
        assert values and all(v == v and v >= 0 for v in values)  # finite, non-negative
    assert any((out / "distill" / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert "val/source_val/mIoU" in header
    # the exported student: model keys + metadata only, loadable by the model zoo
    final = torch.load(result.final_checkpoint, map_location="cpu", weights_only=False)
    assert final["labelbridge"]["model_spec"] == "tiny:width=4"
    assert final["state_dict"] and all(k.startswith("model.") for k in final["state_dict"])
    assert "optimizer_states" not in final
    from labelbridge.models import create_model

    student = create_model(
        "tiny:width=4", load_taxonomy(cfg.taxonomy).num_classes, weights=result.final_checkpoint
    )
    assert isinstance(student, TinySegNet)
    m = json.loads((out / "metrics.json").read_text())["metrics"]["source_val"]
    assert 0.0 <= m["mIoU"] <= 1.0 and m["pixels"] > 0
    # the full checkpoints hold the adapter and discriminator (for resuming) but no teacher
    last = torch.load(
        out / "distill" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert any(k.startswith("task.terms.") for k in last["state_dict"])
    assert not any("teacher" in k for k in last["state_dict"])
    assert last["global_step"] == 4


def test_resume_continues_from_last_checkpoint(world, teacher_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_distillation(_config(world, teacher_file, out, epochs=1))
    first = torch.load(
        out / "distill" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert first["global_step"] == 2
    # pretend a 2-epoch run was cut off after its first epoch: its folder records the
    # 2-epoch settings and no finished marker
    (out / "distill" / "stage_done.json").unlink()
    longer = _config(world, teacher_file, out, epochs=2)
    from labelbridge.config import dump_config

    dump_config(longer, out / "config.yaml")
    run_distillation(longer)
    second = torch.load(
        out / "distill" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert second["global_step"] == 4 and second["epoch"] == 1


def test_cli_distill_help_and_run(world, teacher_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["distill", "--help"])
    assert res.exit_code == 0 and "--set" in res.output
    cfg = _config(world, teacher_file, tmp_path / "cli_run", epochs=1, steps_per_epoch=1)
    path = tmp_path / "distill.yaml"
    from labelbridge.config import dump_config

    dump_config(cfg, path)
    res = runner.invoke(
        app, ["distill", str(path), "--set", "losses.adv=0", "--set", "losses.feat=0", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["loss_terms"] == [
        "ce_source",
        "ce_source_aux",
        "kd_final",
        "kd_aux",
        "ce_pseudo",
    ]
    assert "source_val" in summary["metrics"]
