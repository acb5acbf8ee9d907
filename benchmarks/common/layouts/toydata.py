"""A tiny learnable dataset in the generic 'folder' layout and a training config for it,
shared by the training tests and the reliability cases' training stage.

Scenes of 48x64 pixels: sky (blue) above a random horizon, road (grey) below, one or
two red cars on the road, and a one-pixel unlabelled band at the horizon. Colours carry
noise, so a tiny net must learn colour and position but reaches a high mIoU quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from labelbridge.config.base import validate_config
from labelbridge.config.train import TrainConfig

TOY_TAXONOMY = {
    "name": "toy3",
    "title": "toy scenes",
    "classes": [
        {"id": 0, "name": "sky", "color": [70, 130, 180]},
        {"id": 1, "name": "road", "color": [128, 64, 128]},
        {"id": 2, "name": "car", "color": [0, 0, 142]},
        {"id": 9, "name": "void", "color": [0, 0, 0], "ignore": True},
    ],
}
TOY_SIZE = (64, 48)  # W, H
COLOURS = np.array([[60, 120, 220], [110, 110, 110], [200, 30, 30]], dtype=np.float64)


def make_scene(
    rng: np.random.Generator, size: tuple[int, int] = TOY_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """One ``(H, W, 3)`` uint8 image and ``(H, W)`` uint8 raw-id label."""
    w, h = size
    label = np.ones((h, w), dtype=np.uint8)  # road
    horizon = int(rng.integers(h // 4, h // 2))
    label[:horizon] = 0
    for _ in range(int(rng.integers(1, 3))):
        ch, cw = int(rng.integers(6, 12)), int(rng.integers(8, 18))
        top = int(rng.integers(horizon + 1, h - ch))
        left = int(rng.integers(0, w - cw))
        label[top : top + ch, left : left + cw] = 2
    image = COLOURS[label] + rng.normal(0, 20, size=(h, w, 3))
    label[horizon] = 9
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_toy_dataset(
    root: Path, *, splits: dict[str, int], seed: int = 0, size: tuple[int, int] = TOY_SIZE
) -> Path:
    """Write ``root/images/<split>/sNNN.png``, ``root/labels/<split>/sNNN.png`` and
    ``root/taxonomy.yaml``; returns ``root``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "taxonomy.yaml").write_text(
        yaml.safe_dump(TOY_TAXONOMY, sort_keys=False), encoding="utf-8"
    )
    for split, count in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, label = make_scene(rng, size)
            Image.fromarray(image).save(root / "images" / split / f"s{i:03d}.png")
            Image.fromarray(label, mode="L").save(root / "labels" / split / f"s{i:03d}.png")
    return root


#: Learning rate of :func:`toy_config`.
LR = 0.01


def toy_config(root: Path, out: Path, **changes: Any) -> TrainConfig:
    """A training config of the tiny net on a toy dataset at ``root`` into ``out``."""
    data: dict[str, Any] = {
        "taxonomy": str(root / "taxonomy.yaml"),
        "datasets": [{"reader": "folder", "root": str(root), "split": "train"}],
        "val": [{"reader": "folder", "root": str(root), "split": "val", "label": "toy"}],
        "model": {"spec": "tiny"},
        "optimizer": {"lr": LR},
        "batch_size": 8,
        "steps_per_epoch": 6,
        "epochs": 4,
        "num_workers": 0,
        "augment": {"scale_range": [0.75, 1.5], "crop": [32, 48]},
        "finetune": {"enabled": True, "epochs": 1},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
        },
        "output": str(out),
    }
    data.update(changes)
    return validate_config(TrainConfig, data)
