"""The contract every model in the zoo follows.

A :class:`SegmentationModel` takes RGB images scaled to ``[0, 1]`` as ``(B, 3, H, W)``
float tensors, normalises them itself (so teachers and students with different input
statistics can share a batch), and returns class scores at the input resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from labelbridge.models.shape_ops import is_exporting


class SegmentationModel(nn.Module):
    """Base class of zoo models.

    Args:
        num_classes: number of output classes ``C`` (train ids of a taxonomy).
        mean: per-channel input mean applied inside the model (RGB in ``[0, 1]``).
        std: per-channel input std.
        size_divisor: input sides are padded up to a multiple of this by :meth:`forward`.

    Subclasses implement :meth:`forward_raw` and list in :attr:`classifier_prefixes` the
    state-dict key prefixes of the layers whose shape depends on ``num_classes`` (these are
    re-initialised when weights for another class count are loaded).
    """

    #: State-dict key prefixes of the class-count-dependent layers (the classifier).
    classifier_prefixes: tuple[str, ...] = ()
    #: Whether the model can learn from per-pixel class distributions (soft and partial
    #: labels) through its logits; a model whose loss needs hard masks says no.
    pixel_targets: bool = True

    def __init__(
        self,
        num_classes: int,
        *,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        size_divisor: int = 1,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.size_divisor = size_divisor
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def input_mean(self) -> tuple[float, ...]:
        """Per-channel (RGB) mean subtracted from ``[0, 1]`` inputs inside the model (its
        float32 values to 7 significant digits: ``0.485``, not ``0.48500001430511475``)."""
        return tuple(float(f"{float(v):.7g}") for v in self.pixel_mean.flatten())

    @property
    def input_std(self) -> tuple[float, ...]:
        """Per-channel (RGB) std dividing ``[0, 1]`` inputs inside the model (as
        :attr:`input_mean`)."""
        return tuple(float(f"{float(v):.7g}") for v in self.pixel_std.flatten())

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` -> normalised."""
        return (images - self.pixel_mean) / self.pixel_std

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised, padded ``(B, 3, H, W)`` -> dict with at least ``"logits"``
        ``(B, C, h, w)`` at any resolution; optionally ``"aux_logits"`` (intermediate head)
        and ``"features"`` (an intermediate feature map), used by distillation."""
        raise NotImplementedError

    def forward_outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """All outputs of :meth:`forward_raw`, with ``"logits"`` resized to the input size.

        While a graph is exported (:func:`~labelbridge.models.shape_ops.is_exporting`)
        the input is always padded and the logits cropped by negative padding, so that
        the exported graph holds for every input size (the padded side
        ``d * ceil(h / d)`` is then known to be a multiple of ``d``; slicing would ask
        the exporter to prove ``h <= d * ceil(h / d)``, which it cannot); the values are
        those of eager mode.
        """
        h, w = images.shape[-2:]
        x = self.normalize(images)
        d = self.size_divisor
        ph, pw = (h + d - 1) // d * d - h, (w + d - 1) // d * d - w
        exporting = is_exporting()
        if exporting or ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        out = dict(self.forward_raw(x))
        for key in ("logits", "aux_logits"):
            if key in out:
                t = out[key]
                full = (h + ph, w + pw)
                if t.shape[-2:] != full:
                    t = F.interpolate(t, size=full, mode="bilinear", align_corners=False)
                out[key] = F.pad(t, (0, -pw, 0, -ph)) if exporting else t[..., :h, :w]
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ``(B, C, H, W)`` class scores (logits)."""
        return self.forward_outputs(images)["logits"]

    def compute_loss(self, images: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss for ``target`` ``(B, H, W)`` int64 train ids (``IGNORE_INDEX`` ignored).

        Returns a dict with ``"loss"`` (the total) and optionally named parts. The default
        is pixel-wise cross-entropy; models with their own losses (Mask2Former) override it.
        """
        logits = self(images)
        loss = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
        return {"loss": loss}


class TinySegNet(SegmentationModel):
    """A few-thousand-parameter conv net for fast tests and the demo.

    Args:
        num_classes: output classes.
        width: channels of the hidden layers.
    """

    classifier_prefixes = ("head.", "aux_head.")

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__(num_classes, size_divisor=4)
        self.width = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.context = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=4, dilation=4),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.aux_head = nn.Conv2d(width, num_classes, 1)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.stem(x)
        g = self.context(f)
        return {"logits": self.head(g), "aux_logits": self.aux_head(f), "features": g}
