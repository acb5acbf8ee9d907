"""Training on soft pseudo-labels and on partial labels: what the datasets hand over,
how augmentation moves a target stack, exact resume, and the refusals."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from benchmarks.common.layouts.toydata import make_toy_dataset, toy_config
from labelbridge.config.train import PartialLossConfig, TrainDatasetConfig
from labelbridge.constants import IGNORE_INDEX
from labelbridge.data import create_dataset
from labelbridge.data.pseudo_folder import INFO_FILE, SOFT_ARRAYS, label_relpath
from labelbridge.engine.augment import SegmentationAugment
from labelbridge.engine.datamodule import build_train_sets
from labelbridge.engine.module import SegmentationModule
from labelbridge.engine.stage_targets import StageTargets
from labelbridge.engine.train import run_training
from labelbridge.errors import ConfigError
from labelbridge.files import encode_npz
from labelbridge.models import TinySegNet
from labelbridge.models.hf import Mask2FormerSegmentation
from labelbridge.taxonomy import load_taxonomy
from labelbridge.taxonomy.partial import NO_SET

COARSE = {
    "name": "toy2",
    "classes": [
        {"id": 0, "name": "sky", "color": [70, 130, 180]},
        {"id": 1, "name": "ground", "color": [128, 64, 128]},
        {"id": 9, "name": "void", "color": [0, 0, 0], "ignore": True},
    ],
}
#: coarse raw id -> toy raw id it came from (road and car both became ground)
TO_COARSE = {0: 0, 1: 1, 2: 1, 9: 9}


def _coarse_copy(toy: Path, root: Path) -> tuple[Path, Path]:
    """The toy dataset relabelled in two classes (road and car merged into ground), and a
    mapping from it to the toy taxonomy."""
    for split_dir in (toy / "images").iterdir():
        for img in split_dir.iterdir():
            rel = img.relative_to(toy / "images")
            (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "labels" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "images" / rel).write_bytes(img.read_bytes())
            raw = np.array(Image.open(toy / "labels" / rel))
            lut = np.zeros(256, dtype=np.uint8)
            for a, b in TO_COARSE.items():
                lut[a] = b
            Image.fromarray(lut[raw], mode="L").save(root / "labels" / rel)
    (root / "taxonomy.yaml").write_text(yaml.safe_dump(COARSE, sort_keys=False))
    mapping = root / "to_toy.yaml"
    mapping.write_text(
        yaml.safe_dump(
            {
                "source": str(toy / "taxonomy.yaml"),
                "extra": str(root / "taxonomy.yaml"),
                "mapping": {"sky": ["sky"], "ground": ["road", "car"]},
            }
        )
    )
    return root, mapping


def _soft_folder(toy: Path, folder: Path, split: str = "train", k: int = 2) -> Path:
    """A pseudo-label folder with top-``k`` soft labels made from the toy ground truth:
    the true class at 0.8, the next class id at 0.2."""
    reader = create_dataset("folder", toy, split)
    (folder / INFO_FILE).parent.mkdir(parents=True, exist_ok=True)
    (folder / INFO_FILE).write_text(
        yaml.safe_dump({"taxonomy": str(toy / "taxonomy.yaml"), "outputs": {"soft_top_k": k}})
    )
    tax = reader.taxonomy
    for i, pair in enumerate(reader.pairs):
        train = tax.to_train_ids(reader.load(i).label)
        ids = np.stack([train, np.where(train == IGNORE_INDEX, IGNORE_INDEX, (train + 1) % 3)])
        probs = np.stack([np.full(train.shape, 0.8), np.full(train.shape, 0.2)])
        probs[:, train == IGNORE_INDEX] = 0
        path = folder / label_relpath(pair.key, "_soft.npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = (ids[:k].astype(np.uint8), probs[:k].astype(np.float16))
        path.write_bytes(encode_npz(dict(zip(SOFT_ARRAYS, arrays, strict=True))))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("soft_partial")
    toy = make_toy_dataset(base / "toy", splits={"train": 8, "val": 3})
    coarse, mapping = _coarse_copy(toy, base / "coarse")
    return {
        "toy": toy,
        "coarse": coarse,
        "mapping": mapping,
        "soft": _soft_folder(toy, base / "soft"),
    }


def _entries(data: dict[str, Path]) -> list[TrainDatasetConfig]:
    return [
        TrainDatasetConfig(reader="folder", root=str(data["toy"])),
        TrainDatasetConfig(
            reader="folder",
            root=str(data["toy"]),
            labels={"pseudo": str(data["soft"]), "soft": True},
        ),
        TrainDatasetConfig(
            reader="folder", root=str(data["coarse"]), labels={"partial": str(data["mapping"])}
        ),
    ]


def test_datasets_hand_over_hard_soft_and_partial_targets_in_one_stack(data) -> None:
    entries = _entries(data)
    targets = StageTargets.of_entries(entries, PartialLossConfig())
    assert (targets.soft_k, targets.partial) == (2, (str(data["mapping"]),))
    tax = load_taxonomy(str(data["toy"] / "taxonomy.yaml"))
    gt, soft, partial = build_train_sets(entries, taxonomy=tax, resize=None, targets=targets)
    layout = targets.layout
    raw = np.array(Image.open(data["toy"] / "labels/train/s000.png"))
    train_ids = tax.to_train_ids(raw)

    _, g = gt[0]
    assert g.dtype == torch.float32 and g.shape == (layout.channels, 48, 64)
    assert np.array_equal(g[0].numpy(), train_ids)
    assert (g[1:3] == IGNORE_INDEX).all() and (g[-1] == NO_SET).all()

    _, s = soft[0]
    assert (s[0] == IGNORE_INDEX).all()  # soft entries learn from their soft labels only
    assert np.array_equal(s[1].numpy(), train_ids)
    labelled = train_ids != IGNORE_INDEX
    assert np.allclose(s[3].numpy()[labelled], 0.8, atol=1e-3)
    assert (s[-1] == NO_SET).all()

    _, p = partial[0]
    coarse_raw = np.array(Image.open(data["coarse"] / "labels/train/s000.png"))
    assert (p[0] == IGNORE_INDEX).all() and (p[1:3] == IGNORE_INDEX).all()
    expected = np.where(coarse_raw == 9, NO_SET, coarse_raw.astype(np.int64))  # offset 0
    assert np.array_equal(p[-1].numpy().astype(np.int64), expected)
    table = targets.table(tax)
    assert table.table[1].tolist() == [False, True, True]  # ground: road or car
    assert table.table[0].tolist() == [True, False, False]


def test_augmentation_moves_a_stack_like_its_label() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 24, 32, generator=g)
    labels = torch.randint(0, 3, (2, 24, 32), generator=g)
    stack = torch.stack(
        [labels.float(), labels.float() + 10, torch.rand(2, 24, 32, generator=g)], 1
    )
    aug = SegmentationAugment(scale_range=(0.5, 1.5), crop=(30, 40))
    torch.manual_seed(7)
    img_a, lab_a = aug(images, labels)
    torch.manual_seed(7)
    img_b, st_b = aug(images, stack, (255.0, 255.0, 0.0))
    assert torch.equal(img_a, img_b)
    assert torch.equal(st_b[:, 0].long(), lab_a)  # same crop, scale and flip
    pad = lab_a == IGNORE_INDEX
    assert pad.any()  # the crop is larger than some rescaled images
    assert (st_b[:, 1][pad] == 255).all() and (st_b[:, 2][pad] == 0).all()
    assert torch.equal(st_b[:, 1][~pad], lab_a[~pad].float() + 10)
    with pytest.raises(ValueError, match="pad"):
        aug(images, stack)


def test_soft_and_partial_training_resumes_to_the_same_weights(data, tmp_path: Path) -> None:
    datasets = [e.model_dump(mode="json") for e in _entries(data)]
    kw = {
        "datasets": datasets,
        "epochs": 2,
        "finetune": {"enabled": False},
        "partial_loss": {"weight": 0.5},
    }
    whole = run_training(toy_config(data["toy"], tmp_path / "whole", **kw))
    assert whole.history and all(np.isfinite(h["val/toy/mIoU"]) for h in whole.history)

    class Stop(Exception):
        pass

    class StopAtEpoch(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if trainer.current_epoch == 1:
                raise Stop

    with pytest.raises(Stop):
        run_training(toy_config(data["toy"], tmp_path / "resumed", **kw), callbacks=[StopAtEpoch()])
    resumed = run_training(toy_config(data["toy"], tmp_path / "resumed", **kw))
    a = torch.load(whole.final_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    b = torch.load(resumed.final_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    hp = torch.load(whole.final_checkpoint, map_location="cpu", weights_only=False)[
        "hyper_parameters"
    ]
    assert hp["targets"] == {
        "soft_k": 2,
        "partial": [str(data["mapping"])],
        "void_option": "allowed",
        "partial_weight": 0.5,
    }


def test_a_folder_without_soft_labels_and_a_mapping_of_another_taxonomy_are_refused(
    data, tmp_path: Path
) -> None:
    hard_only = tmp_path / "hard"
    hard_only.mkdir()
    (hard_only / INFO_FILE).write_text(
        yaml.safe_dump({"taxonomy": "toy3", "outputs": {"soft_top_k": 0}})
    )
    entry = TrainDatasetConfig(
        reader="folder", root=str(data["toy"]), labels={"pseudo": str(hard_only), "soft": True}
    )
    with pytest.raises(ConfigError, match="holds no soft labels") as err:
        StageTargets.of_entries([entry], PartialLossConfig())
    assert str(hard_only / INFO_FILE) in str(err.value)
    # the mapping's extra side is the coarse taxonomy, not the toy one
    wrong = TrainDatasetConfig(
        reader="folder", root=str(data["toy"]), labels={"partial": str(data["mapping"])}
    )
    tax = load_taxonomy(str(data["toy"] / "taxonomy.yaml"))
    targets = StageTargets.of_entries([wrong], PartialLossConfig())
    with pytest.raises(ConfigError, match="extra taxonomy is 'toy2'"):
        build_train_sets([wrong], taxonomy=tax, resize=None, targets=targets)
    with pytest.raises(ValueError, match="'soft: true' reads the soft labels"):
        TrainDatasetConfig(reader="folder", labels={"partial": "x", "soft": True})


def test_a_model_that_needs_hard_masks_refuses_soft_and_partial_targets(
    data, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Mask2FormerSegmentation.pixel_targets is False and TinySegNet.pixel_targets is True
    hard_masks = TinySegNet(3)
    hard_masks.pixel_targets = False
    monkeypatch.setattr("labelbridge.engine.module.create_model", lambda *a, **k: hard_masks)
    tax = load_taxonomy(str(data["toy"] / "taxonomy.yaml"))
    args = {
        "model_spec": "mask2former:swin-t",
        "taxonomy": tax.to_dict(),
        "optimizer": {},
        "schedule": {},
    }
    SegmentationModule(**args)  # hard labels: fine
    with pytest.raises(ConfigError, match="hard labels only"):
        SegmentationModule(
            **args,
            targets={"soft_k": 2, "partial": [], "void_option": "allowed", "partial_weight": 1.0},
        )


def test_soft_and_partial_training_runs_under_ddp(data, tmp_path: Path) -> None:
    """Two CPU processes (gloo): target stacks, the padded collate and the set table
    travel to the spawned workers; both ranks train and the run finishes."""
    datasets = [e.model_dump(mode="json") for e in _entries(data)]
    cfg = toy_config(
        data["toy"],
        tmp_path / "ddp",
        datasets=datasets,
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        finetune={"enabled": False},
        trainer={
            "accelerator": "cpu",
            "devices": 2,
            # the tiny net's auxiliary head is not in this loss
            "strategy": "ddp_spawn_find_unused_parameters_true",
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
        },
    )
    result = run_training(cfg)
    assert result.final_checkpoint.is_file()
    assert 0.0 <= result.metrics["toy"]["mIoU"] <= 1.0
