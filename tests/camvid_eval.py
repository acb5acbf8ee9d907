"""CamVid test-split evaluation of Cityscapes models through the CamVid-11 mapping, shared
by the ESPNetv2 and DiCENet tests of the published weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labelbridge.constants import IGNORE_INDEX
from labelbridge.models import image_to_tensor, predict_logits
from labelbridge.taxonomy import load_ontology


def camvid_test_pairs(camvid_root: Path) -> list[tuple[Path, Path]]:
    images = sorted((camvid_root / "test").glob("*.jpg"))
    return [(p, camvid_root / "testannot" / f"{p.stem}.png") for p in images]


def camvid_confusion(
    model: torch.nn.Module, pairs: list[tuple[Path, Path]], *, input_size: tuple[int, int]
) -> np.ndarray:
    """``(11, 11)`` confusion (rows: CamVid ground truth, columns: projected predictions)
    over the labelled pixels; predictions of the 19 Cityscapes classes are projected."""
    onto = load_ontology("camvid11_to_cityscapes")
    projection = onto.projection
    k = onto.extra.num_classes
    assert (projection != IGNORE_INDEX).all()  # every Cityscapes class has a CamVid class
    conf = np.zeros((k, k), dtype=np.int64)
    for image_path, label_path in pairs:
        image = np.asarray(Image.open(image_path).convert("RGB"))
        gt = onto.extra.to_train_ids(np.asarray(Image.open(label_path), dtype=np.int32))
        logits = predict_logits(model, image_to_tensor(image), input_size=input_size)
        pred = projection[logits.argmax(dim=1)[0].numpy()]
        valid = gt != IGNORE_INDEX
        conf += np.bincount(gt[valid] * k + pred[valid], minlength=k * k).reshape(k, k)
    return conf
