"""Output-space discriminator for adversarial domain adaptation (AdaptSegNet).

Tsai et al., "Learning to Adapt Structured Output Space for Semantic Segmentation"
(CVPR 2018): a small fully-convolutional network looks at the *softmax* output of the
segmentation network and tells source images from target images; the segmentation
network is trained to make its target outputs look like source outputs.
"""

from __future__ import annotations

import torch
from torch import nn

#: Slope of the leaky ReLUs (AdaptSegNet's value).
LEAKY_SLOPE: float = 0.2


class OutputDiscriminator(nn.Module):
    """Five 4x4 stride-2 convolutions with leaky ReLUs; one logit per output cell.

    Args:
        num_classes: channels ``C`` of the probability maps it reads.
        width: channels of the first layer (doubled in each of the next three).

    Example:
        >>> d = OutputDiscriminator(num_classes=19, width=8)
        >>> d(torch.softmax(torch.randn(2, 19, 64, 64), dim=1)).shape
        torch.Size([2, 1, 2, 2])
    """

    def __init__(self, *, num_classes: int, width: int = 64) -> None:
        super().__init__()
        chans = [num_classes, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.Conv2d(cin, cout, 4, stride=2, padding=1),
                nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            ]
        layers.append(nn.Conv2d(chans[-1], 1, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` class probabilities in ``[0, 1]`` -> ``(B, 1, H/32, W/32)``
        logits of "this output comes from a source image"."""
        return self.net(probs)
