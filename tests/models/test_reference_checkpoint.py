"""The reference implementation's checkpoints (its published Mask2Former teachers):
a small randomly initialised Mask2Former saved exactly as its ``train.py`` saves loads
with its taxonomy, predicts as the original, and teaches ``labelbridge pseudo-label``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_models_hf import tiny_mask2former_config
from typer.testing import CliRunner

from benchmarks.common.layouts import make_camvid
from benchmarks.common.reliability.pseudo_cases import pseudo_config
from labelbridge.cli import app
from labelbridge.config import dump_config
from labelbridge.errors import CheckpointError
from labelbridge.models import Mask2FormerSegmentation, load_checkpoint
from labelbridge.taxonomy import load_taxonomy

transformers = pytest.importorskip("transformers")


def save_reference(path: Path, taxonomy: str | None, names: list[str], **config) -> Path:
    """A Mask2Former checkpoint in the reference's format (``train.py``'s
    ``accelerator.save``): the config object, not plain data, and the training state."""
    torch.manual_seed(0)
    cfg = tiny_mask2former_config(len(names))
    cfg.id2label = dict(enumerate(names))
    cfg.label2id = {n: i for i, n in enumerate(names)}
    hf = transformers.Mask2FormerForUniversalSegmentation(cfg).eval()
    optimizer = torch.optim.AdamW(hf.parameters(), lr=1e-4)
    train_config = {"seg_task": "semantic", "size": "base", **config}
    if taxonomy is not None:
        train_config["master_labels"] = taxonomy
    torch.save(
        {
            "model_state_dict": hf.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "scheduler_state_dict": {},
            "epoch": 24,
            "global_step": 1000,
            "config": train_config,
            "model_config": hf.config,
            "fitness": 0.755,
            "mIoU": 0.755,
        },
        path,
    )
    return path


def test_a_reference_cityscapes_teacher_loads_with_its_taxonomy(tmp_path: Path) -> None:
    city = load_taxonomy("cityscapes")
    path = save_reference(tmp_path / "24_best.pth", "master_labels_cityscapes", city.train_names)
    loaded = load_checkpoint(path)
    assert loaded.taxonomy.name == "cityscapes" and loaded.spec == "mask2former"
    assert loaded.meta["format"] == "data-priors" and loaded.meta["imported_from"] == str(path)
    # the same network as the saved one: rebuilt from the stored config and weights
    ckpt = torch.load(path, weights_only=False)
    original = transformers.Mask2FormerForUniversalSegmentation(ckpt["model_config"]).eval()
    original.load_state_dict(ckpt["model_state_dict"])
    reference = Mask2FormerSegmentation(19, hf_model=original).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        ours, theirs = loaded.model(x), reference(x)
    assert ours.shape == (1, 19, 64, 96)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_the_label_space_comes_from_master_labels_or_the_class_names(tmp_path: Path) -> None:
    off = load_taxonomy("offroad")
    by_config = save_reference(tmp_path / "a.pth", "master_labels_offroad", off.train_names)
    assert load_checkpoint(by_config).taxonomy.name == "offroad"
    by_names = save_reference(tmp_path / "b.pth", None, off.train_names)
    assert load_checkpoint(by_names).taxonomy.name == "offroad"


def test_names_that_are_not_the_taxonomy_are_refused(tmp_path: Path) -> None:
    names = load_taxonomy("cityscapes").train_names
    swapped = [names[1], names[0], *names[2:]]
    path = save_reference(tmp_path / "x.pth", "master_labels_cityscapes", swapped)
    with pytest.raises(CheckpointError, match=r"x.pth: config.master_labels .* train-id order"):
        load_checkpoint(path)
    unknown = save_reference(tmp_path / "y.pth", None, ["a", "b", "c"])
    with pytest.raises(CheckpointError, match="y.pth: no config.master_labels"):
        load_checkpoint(unknown)


def test_a_reference_teacher_pseudo_labels_camvid(tmp_path: Path) -> None:
    city = load_taxonomy("cityscapes")
    teacher = save_reference(tmp_path / "t.pth", "master_labels_cityscapes", city.train_names)
    data = make_camvid(tmp_path / "camvid")
    # the fixture's images are tiny; Mask2Former's coarsest features need 2 x 2 pixels
    cfg = pseudo_config(
        data.root,
        tmp_path / "out",
        teacher={"checkpoint": str(teacher)},
        tta={"flip": False, "scales": [8.0]},
    )
    dump_config(cfg, tmp_path / "p.yaml")
    res = CliRunner().invoke(app, ["pseudo-label", str(tmp_path / "p.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["datasets"]
    assert row["processed"] == row["total"] == len(data.keys["train"]) > 0
    assert row["complete"] is True and row["failed"] == 0
    # the priors acted on the reference teacher's Cityscapes scores
    assert 0.0 <= row["changed_by_priors_share"] <= 1.0
