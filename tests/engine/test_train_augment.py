"""SegmentationAugment: consistent image/label geometry, label values kept, seeding."""

from __future__ import annotations

import pytest
import torch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.engine.augment import SegmentationAugment


def coded_batch(b: int = 4, h: int = 20, w: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels 0..4 in vertical stripes plus an ignore block; image channel 0 = label / 255."""
    cols = torch.arange(w) * 5 // w
    labels = cols.expand(b, h, w).clone()
    labels[:, :3, :4] = IGNORE_INDEX
    images = torch.rand(b, 3, h, w)
    images[:, 0] = labels.float() / 255.0
    return images, labels


def test_label_values_stay_train_ids_or_ignore() -> None:
    torch.manual_seed(0)
    aug = SegmentationAugment(
        scale_range=(0.5, 2.0), crop=(24, 40), hflip=True, brightness=0.3, contrast=0.3
    )
    images, labels = coded_batch()
    for _ in range(5):
        out_img, out_lab = aug(images, labels)
        assert tuple(out_img.shape) == (4, 3, 24, 40) and tuple(out_lab.shape) == (4, 24, 40)
        assert out_lab.dtype == torch.int64
        assert set(torch.unique(out_lab).tolist()) <= {0, 1, 2, 3, 4, IGNORE_INDEX}
        assert float(out_img.min()) >= 0.0 and float(out_img.max()) <= 1.0


def test_crop_and_flip_move_image_and_label_together() -> None:
    torch.manual_seed(1)
    aug = SegmentationAugment(scale_range=(1.0, 1.0), crop=(16, 20), hflip=True)
    images, labels = coded_batch(b=8)
    out_img, out_lab = aug(images, labels)
    code = torch.round(out_img[:, 0] * 255).long()
    assert torch.equal(code, out_lab)
    # stripes increase left to right unless flipped: both orders must occur among 8 images
    left, right = out_lab[:, 8, 0], out_lab[:, 8, -1]
    flipped = left > right
    assert 0 < int(flipped.sum()) < 8


def test_flip_only_mirrors_both() -> None:
    torch.manual_seed(2)
    aug = SegmentationAugment(scale_range=(1.0, 1.0), crop=None, hflip=True)
    images, labels = coded_batch(b=6)
    out_img, out_lab = aug(images, labels)
    for i in range(6):
        same = torch.equal(out_lab[i], labels[i]) and torch.equal(out_img[i], images[i])
        mirrored = torch.equal(out_lab[i], labels[i].flip(-1)) and torch.equal(
            out_img[i], images[i].flip(-1)
        )
        assert same != mirrored


def test_downscale_pads_label_with_ignore() -> None:
    aug = SegmentationAugment(scale_range=(0.5, 0.5), crop=None, hflip=False)
    images, labels = coded_batch(b=1, h=20, w=30)
    out_img, out_lab = aug(images, labels)
    assert tuple(out_lab.shape) == (1, 20, 30)
    assert out_lab[0, 10:].eq(IGNORE_INDEX).all() and out_lab[0, :, 15:].eq(IGNORE_INDEX).all()
    assert out_img[0, :, 10:].eq(0).all()
    # the 10x15 content is the label subsampled by 2 (nearest)
    assert torch.equal(out_lab[0, :10, :15], labels[0, ::2, ::2])


def test_same_seed_same_output() -> None:
    aug = SegmentationAugment(
        scale_range=(0.5, 2.0), crop=(16, 16), brightness=0.4, saturation=0.4, hue=0.1
    )
    images, labels = coded_batch()
    torch.manual_seed(5)
    a = aug(images, labels)
    torch.manual_seed(5)
    b = aug(images, labels)
    torch.manual_seed(6)
    c = aug(images, labels)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_bad_scale_range() -> None:
    with pytest.raises(ValueError, match="scale_range"):
        SegmentationAugment(scale_range=(2.0, 1.0))
