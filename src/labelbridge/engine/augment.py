"""Training augmentation on the training device (kornia): random rescale, random crop
(padding labels with ignore), horizontal flip and colour jitter, with images and labels
transformed consistently (labels resampled nearest-neighbour, so they keep their values).

Random parameters come from torch's global generator, so ``torch.manual_seed`` (or
``lightning.seed_everything``) makes a run repeatable.
"""

from __future__ import annotations

import kornia.augmentation as KA
import torch
import torch.nn.functional as F
from kornia.geometry.transform import resize
from torch import nn

from labelbridge.constants import IGNORE_INDEX


class SegmentationAugment(nn.Module):
    """Joint image/label augmentation of a batch.

    Args:
        scale_range: ``(min, max)`` rescale factor, drawn uniformly per image.
        crop: ``(H, W)`` output size; ``None``: the input batch's size.
        hflip: flip each image and its label left-right with probability 0.5.
        brightness: colour-jitter strengths (0 = off), as in ``kornia.augmentation.ColorJitter``.
        contrast: see ``brightness``.
        saturation: see ``brightness``.
        hue: see ``brightness`` (``0..0.5``).

    Example:
        >>> aug = SegmentationAugment(scale_range=(0.5, 2.0), crop=(32, 48))
        >>> img, lab = aug(torch.rand(2, 3, 40, 60), torch.zeros(2, 40, 60, dtype=torch.long))
        >>> tuple(img.shape), tuple(lab.shape)
        ((2, 3, 32, 48), (2, 32, 48))
    """

    def __init__(
        self,
        *,
        scale_range: tuple[float, float] = (0.5, 2.0),
        crop: tuple[int, int] | None = None,
        hflip: bool = True,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
    ) -> None:
        super().__init__()
        lo, hi = float(scale_range[0]), float(scale_range[1])
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < min <= max, got {scale_range}")
        self.scale_range = (lo, hi)
        self.crop = tuple(int(v) for v in crop) if crop is not None else None
        self.hflip = hflip
        self.jitter: nn.Module | None = None
        if any(v > 0 for v in (brightness, contrast, saturation, hue)):
            self.jitter = KA.ColorJitter(
                brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=1.0
            )

    def _one(
        self,
        image: torch.Tensor,
        label: torch.Tensor,
        out_hw: tuple[int, int],
        pad_values: tuple[float, ...] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rescale, crop/pad and flip one ``(3, H, W)`` image and its ``(H, W)`` label or
        ``(C, H, W)`` target stack (padded with each channel's ``pad_values``)."""
        h, w = image.shape[-2:]
        lo, hi = self.scale_range
        scale = lo + (hi - lo) * float(torch.rand(()))
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        stack = label.ndim == 3
        if (sh, sw) != (h, w):
            image = resize(image[None], (sh, sw), interpolation="bilinear", align_corners=False)[0]
            planes = label[None] if stack else label[None, None].float()
            planes = resize(planes, (sh, sw), interpolation="nearest")[0]
            label = planes if stack else planes[0].long()
        ch, cw = out_hw
        pad_h, pad_w = max(0, ch - sh), max(0, cw - sw)
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
            if stack:
                assert pad_values is not None
                label = torch.cat(
                    [
                        F.pad(c[None], (0, pad_w, 0, pad_h), value=v)
                        for c, v in zip(label, pad_values, strict=True)
                    ]
                )
            else:
                label = F.pad(label, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
        top = int(torch.randint(0, image.shape[-2] - ch + 1, ()))
        left = int(torch.randint(0, image.shape[-1] - cw + 1, ()))
        image = image[:, top : top + ch, left : left + cw]
        label = label[..., top : top + ch, left : left + cw]
        if self.hflip and bool(torch.rand(()) < 0.5):
            image, label = image.flip(-1), label.flip(-1)
        return image, label

    def forward(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        pad_values: tuple[float, ...] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a batch.

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``.
            labels: ``(B, H, W)`` int64 train ids or ``IGNORE_INDEX``, or ``(B, C, H, W)``
                float target stacks (:mod:`labelbridge.data.target_stack`).
            pad_values: with stacks, each channel's fill where a crop pads.

        Returns:
            ``(B, 3, h, w)`` float images in ``[0, 1]`` and the labels (or stacks) at
            ``(h, w)`` with the same set of possible values, ``(h, w)`` = ``crop`` or
            ``(H, W)``.
        """
        stack = labels.ndim == 4
        if (
            images.ndim != 4
            or labels.ndim not in (3, 4)
            or images.shape[0] != labels.shape[0]
            or (stack and (pad_values is None or len(pad_values) != labels.shape[1]))
        ):
            raise ValueError(
                f"expected (B,3,H,W) images and (B,H,W) labels or (B,C,H,W) stacks with C pad "
                f"values, got {tuple(images.shape)}, {tuple(labels.shape)}"
            )
        out_hw = self.crop or (int(images.shape[-2]), int(images.shape[-1]))
        pairs = [
            self._one(images[i], labels[i], out_hw, pad_values) for i in range(images.shape[0])
        ]
        out_images = torch.stack([p[0] for p in pairs])
        out_labels = torch.stack([p[1] for p in pairs])
        if self.jitter is not None:
            out_images = self.jitter(out_images).clamp_(0.0, 1.0)
        return out_images, out_labels
