"""Training engine on a tiny generated dataset: learning beats the majority-class
baseline, the fine-tune stage runs at 0.1x LR, checkpoints are self-contained, finished
stages are skipped, interrupted stages resume, DDP validation sums confusion matrices."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

from benchmarks.common.layouts.toydata import LR, make_toy_dataset, toy_config
from labelbridge.constants import IGNORE_INDEX
from labelbridge.data import create_dataset
from labelbridge.engine.callbacks import STAGE_MARKER, read_stage_marker
from labelbridge.engine.module import SegmentationModule
from labelbridge.engine.stage import validate_checkpoint
from labelbridge.engine.train import run_training
from labelbridge.errors import ConfigError
from labelbridge.evaluation import ConfusionMatrix
from labelbridge.models import TinySegNet, load_checkpoint


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("data") / "toy", splits={"train": 16, "val": 5})


@pytest.fixture(scope="module")
def trained(toy_root: Path, tmp_path_factory: pytest.TempPathFactory):
    cfg = toy_config(toy_root, tmp_path_factory.mktemp("run") / "out")
    return cfg, run_training(cfg)


def majority_baseline(root: Path) -> float:
    """mIoU of predicting the most frequent val class everywhere."""
    reader = create_dataset("folder", root, "val")
    targets = [
        reader.taxonomy.to_train_ids(s.label).astype(np.int64) for s in reader.iter_samples()
    ]
    counts = np.bincount(np.concatenate([t[t != IGNORE_INDEX] for t in targets]), minlength=3)
    cm = ConfusionMatrix(3)
    for t in targets:
        cm.update(np.full_like(t, int(counts.argmax())), t)
    return cm.compute().miou


def test_training_beats_majority_baseline(trained, toy_root: Path) -> None:
    cfg, result = trained
    baseline = majority_baseline(toy_root)
    assert 0.15 < baseline < 0.3  # road covers most pixels: its IoU / 3 classes
    miou = result.metrics["toy"]["mIoU"]
    assert miou > baseline + 0.25, (miou, baseline)
    assert result.metrics["toy"]["pixels"] == 5 * (48 - 1) * 64  # horizon row is ignored
    stage1 = [h for h in result.history if h["stage"] == "train"]
    assert [h["epoch"] for h in stage1] == [0, 1, 2, 3]
    assert [h["step"] for h in stage1] == [6, 12, 18, 24]


def test_finetune_runs_at_tenth_of_the_learning_rate(trained) -> None:
    cfg, result = trained
    stage1 = [h for h in result.history if h["stage"] == "train"]
    stage2 = [h for h in result.history if h["stage"] == "finetune"]
    assert stage1 and stage2
    assert stage1[0]["initial_lr"] == [pytest.approx(LR)]
    assert stage2[0]["initial_lr"] == [pytest.approx(0.1 * LR)]
    # poly schedule without warm-up: after 6 of 6 steps the rate has decayed to 0
    assert stage2[0]["step"] == 6 and stage2[0]["lr"] == [pytest.approx(0.0)]


def test_outputs_are_self_contained_and_stages_marked(trained) -> None:
    cfg, result = trained
    out = result.out_dir
    assert (out / "train" / STAGE_MARKER).is_file() and (out / "finetune" / STAGE_MARKER).is_file()
    assert (out / "metrics.json").is_file() and (out / "config.yaml").is_file()
    assert (out / "train" / "logs" / "csv" / "metrics.csv").is_file()
    assert any((out / "train" / "logs" / "tensorboard").iterdir())
    loaded = load_checkpoint(result.final_checkpoint)
    assert loaded.taxonomy.train_names == ["sky", "road", "car"] and loaded.spec == "tiny"
    # the loaded model reproduces the run's validation metrics
    reader = create_dataset("folder", Path(cfg.val[0].root), "val")
    cm = ConfusionMatrix(3)
    with torch.no_grad():
        for s in reader.iter_samples():
            img = torch.from_numpy(s.image).permute(2, 0, 1)[None].float() / 255
            cm.update(
                loaded.model(img).argmax(1)[0],
                reader.taxonomy.to_train_ids(s.label).astype(np.int64),
            )
    assert cm.compute().miou == pytest.approx(result.metrics["toy"]["mIoU"], abs=1e-5)


class FailOnTrainStart(L.Callback):
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        raise AssertionError("training started although every stage had finished")


def test_rerun_skips_finished_stages(trained) -> None:
    cfg, result = trained
    again = run_training(cfg, callbacks=[FailOnTrainStart()])
    assert again.metrics == result.metrics
    assert again.history == result.history
    assert again.best_checkpoint == result.best_checkpoint


def test_moved_run_folder_still_skips_finished_stages(trained, tmp_path: Path) -> None:
    cfg, result = trained
    moved = tmp_path / "renamed_run"
    shutil.copytree(cfg.output_dir, moved)
    marker = json.loads((moved / "train" / STAGE_MARKER).read_text())
    assert marker["best_checkpoint"] == f"checkpoints/{result.best_checkpoint.name}"
    read = read_stage_marker(moved / "train")
    assert read is not None
    assert read["best_checkpoint"] == str(
        moved / "train" / "checkpoints" / result.best_checkpoint.name
    )
    again = run_training(
        cfg.model_copy(update={"output": str(moved)}), callbacks=[FailOnTrainStart()]
    )
    assert again.best_checkpoint == moved / "train" / "checkpoints" / result.best_checkpoint.name
    assert again.metrics == result.metrics
    # a marker whose checkpoint has gone is an error that names the marker, not a retrain
    again.best_checkpoint.unlink()
    with pytest.raises(FileNotFoundError, match=r"renamed_run/train/stage_done\.json.*missing"):
        run_training(cfg.model_copy(update={"output": str(moved)}), callbacks=[FailOnTrainStart()])


class Interrupt(L.Callback):
    """Raises once the global step reaches ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step >= self.at:
            raise KeyError("simulated crash")


class RecordStart(L.Callback):
    def __init__(self) -> None:
        self.starts: list[tuple[int, int]] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append((trainer.global_step, trainer.current_epoch))


def test_interrupted_training_resumes_from_last_checkpoint(toy_root: Path, tmp_path: Path) -> None:
    cfg = toy_config(toy_root, tmp_path / "out", epochs=3, finetune={"enabled": False})
    with pytest.raises(KeyError, match="simulated crash"):
        run_training(cfg, callbacks=[Interrupt(at=9)])  # in epoch 1, after epoch 0's checkpoint
    assert (tmp_path / "out" / "train" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "out" / "train" / STAGE_MARKER).exists()
    rec = RecordStart()
    result = run_training(cfg, callbacks=[rec])
    assert rec.starts == [(6, 1)]  # continued after epoch 0 (6 steps), not from step 0
    assert [h["step"] for h in result.history] == [6, 12, 18]
    assert result.final_checkpoint.is_file()


def test_gt_dataset_of_another_taxonomy_is_a_config_error(toy_root: Path, tmp_path: Path) -> None:
    cfg = toy_config(toy_root, tmp_path / "out", taxonomy="camvid11")
    with pytest.raises(ConfigError, match="use pseudo-labels"):
        run_training(cfg)


def test_ddp_validation_matches_single_process(trained) -> None:
    """Two CPU processes (gloo) each score half of the 5 val images; the summed confusion
    matrix must equal the single-process one (no padding duplicates, no averaged mIoUs)."""
    cfg, result = trained
    single = validate_checkpoint(cfg, result.final_checkpoint, model_spec=cfg.model.spec)
    ddp_cfg = cfg.model_copy(
        update={"trainer": cfg.trainer.model_copy(update={"devices": 2, "strategy": "ddp_spawn"})}
    )
    ddp = validate_checkpoint(ddp_cfg, result.final_checkpoint, model_spec=cfg.model.spec)
    assert ddp["toy"]["pixels"] == single["toy"]["pixels"] == 5 * 47 * 64
    assert ddp["toy"]["mIoU"] == pytest.approx(single["toy"]["mIoU"], abs=1e-6)
    assert ddp["toy"]["pixel_accuracy"] == pytest.approx(single["toy"]["pixel_accuracy"], abs=1e-6)
    for name, iou in single["toy"]["per_class_iou"].items():
        assert ddp["toy"]["per_class_iou"][name] == pytest.approx(iou, abs=1e-6)


COARSE_TAXONOMY = """\
name: toy2
classes:
  - {id: 0, name: sky, color: [70, 130, 180]}
  - {id: 1, name: ground, color: [128, 64, 128]}
  - {id: 9, name: void, color: [0, 0, 0], ignore: true}
"""
COARSE_MAPPING = """\
source: {source}
extra: toy2.yaml
mapping:
  sky: [sky]
  ground: [road, car]
"""


def coarse_copy(root: Path, dest: Path) -> Path:
    """The val split of ``root`` with labels merged into toy2 (road, car -> ground)."""
    import shutil

    from PIL import Image

    (dest / "images").mkdir(parents=True)
    shutil.copytree(root / "images" / "val", dest / "images" / "val")
    (dest / "labels" / "val").mkdir(parents=True)
    for p in sorted((root / "labels" / "val").glob("*.png")):
        lab = np.array(Image.open(p))
        lab = np.where(lab == 2, 1, lab).astype(np.uint8)
        Image.fromarray(lab, mode="L").save(dest / "labels" / "val" / p.name)
    (dest / "taxonomy.yaml").write_text(COARSE_TAXONOMY, encoding="utf-8")
    return dest


def test_student_with_pseudo_labels_and_projected_val(toy_root: Path, tmp_path: Path) -> None:
    import yaml
    from PIL import Image

    from labelbridge.evaluation.projected import project_predictions
    from labelbridge.taxonomy import load_ontology

    extra_root = make_toy_dataset(tmp_path / "extra", splits={"train": 6}, seed=3)
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    (pseudo / "pseudo_labels.yaml").write_text(
        yaml.safe_dump({"taxonomy": "toy3"}), encoding="utf-8"
    )
    reader = create_dataset("folder", extra_root, "train")
    for s in reader.iter_samples():  # stand-in pseudo-labels: the true train ids
        out = pseudo / f"{s.key}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(reader.taxonomy.to_train_ids(s.label), mode="L").save(out)
    coarse = coarse_copy(toy_root, tmp_path / "coarse")
    (tmp_path / "toy2.yaml").write_text(COARSE_TAXONOMY, encoding="utf-8")
    mapping = tmp_path / "toy2_to_toy3.yaml"
    mapping.write_text(COARSE_MAPPING.format(source=toy_root / "taxonomy.yaml"), encoding="utf-8")
    initial = tmp_path / "initial.pt"
    torch.manual_seed(5)
    torch.save(TinySegNet(3).state_dict(), initial)
    cfg = toy_config(
        toy_root,
        tmp_path / "out",
        epochs=2,
        model={"spec": "tiny", "weights": str(initial)},
        datasets=[
            {"reader": "folder", "root": str(toy_root), "split": "train", "weight": 1.0},
            {
                "reader": "folder",
                "root": str(extra_root),
                "split": "train",
                "labels": {"pseudo": str(pseudo)},
                "weight": 2.0,
            },
        ],
        val=[
            {
                "reader": "folder",
                "root": str(coarse),
                "split": "val",
                "label": "coarse",
                "ontology": str(mapping),
            },
            {
                "reader": "folder",
                "root": str(toy_root),
                "split": "val",
                "label": "toy",
                "select": True,
            },
        ],
    )
    assert [d.root for d in cfg.source_datasets] == [str(toy_root)]
    result = run_training(cfg)
    assert set(result.metrics) == {"coarse", "toy"}
    assert set(result.metrics["coarse"]["per_class_iou"]) == {"sky", "ground"}
    # the engine's projected score equals projecting the final model's predictions by hand
    loaded = load_checkpoint(result.final_checkpoint)
    onto = load_ontology(mapping)
    coarse_reader = create_dataset("folder", coarse, "val")
    cm = ConfusionMatrix(2)
    with torch.no_grad():
        for s in coarse_reader.iter_samples():
            img = torch.from_numpy(s.image).permute(2, 0, 1)[None].float() / 255
            pred = project_predictions(loaded.model(img).argmax(1)[0], onto)
            cm.update(pred, coarse_reader.taxonomy.to_train_ids(s.label).astype(np.int64))
    assert cm.compute().miou == pytest.approx(result.metrics["coarse"]["mIoU"], abs=1e-5)
    assert result.metrics["coarse"]["pixels"] == 5 * 47 * 64
    # model selection followed the 'toy' set (select: true)
    marker = (result.out_dir / "train" / STAGE_MARKER).read_text()
    best_toy = max(h["val/toy/mIoU"] for h in result.history if h["stage"] == "train")
    assert f'"best_score": {best_toy}' in marker
    # on another machine (no initial weights, no mapping file) the checkpoint still loads
    # through Lightning, and its model is the final one
    initial.unlink()
    mapping.unlink()
    module = SegmentationModule.load_from_checkpoint(result.final_checkpoint, map_location="cpu")
    assert module.hparams.weights is None and module.hparams.val_sets == []
    assert (
        module.model_spec == "tiny" and module.taxonomy.train_names == loaded.taxonomy.train_names
    )
    img = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        assert torch.equal(module.model.eval()(img), loaded.model.eval()(img))
