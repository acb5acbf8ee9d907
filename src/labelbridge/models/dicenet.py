"""DiCENet for semantic segmentation (Mehta et al., "DiCENet: Dimension-wise Convolutions
for Efficient Networks", TPAMI 2020), segmentation variant of the EdgeNets code base,
written so that the published Cityscapes file loads strictly.

Structure (``s`` scales the encoder widths, table :data:`DICENET_WIDTHS`)::

    level1      3x3 conv stride 2 + BN + PReLU                               H/2
    level2      3x3 max-pool stride 2                                        H/4
    level3      strided DiCE unit, then 3 shuffle-DiCE blocks                H/8
    level4      strided DiCE unit, then 7 shuffle-DiCE blocks                H/16
    decoder     eff_pool_16x16 (efficient pyramid pool) on level4, then three times:
                x2 upsample + proj_enc (gated grouped 3x3 projection of an encoder
                level) -> bu_br (BN + PReLU) -> eff_pool                      H/2
    output      bilinear (align_corners=True) to the input size

A DiCE unit (:class:`DiCE`) convolves its input ``(B, C, H, W)`` depth-wise along each
of the three dimensions: along the channels (a usual depth-wise 3x3 conv), along the
height (the map is transposed so that the ``H`` rows become the channels of a grouped
conv over the ``(C, W)`` plane) and along the width (likewise with the ``W`` columns).
The height- and width-wise convs have one filter per row / column, so they were built
for a fixed map size: the EdgeNets models use that of a 224x224 input (28 at level3,
14 at level4, :data:`REFERENCE_INPUT_SIDE`) and resize other maps to it along that
dimension (bilinear up, adaptive average pooling down) and back afterwards. The three
results are concatenated, normalised, shuffled and fused per channel
(dimension-wise fusion: a grouped 1x1 conv ``3C -> C``), then projected by a grouped
3x3 conv and multiplied with a per-channel gate (squeeze-excitation style).

Module and parameter names follow the published file exactly
(``base_net.level3.1.layer_right.1.conv_width.weight``, ``eff_pool_128x128.merge_layer.3.bias``,
...), so ``load_state_dict(strict=True)`` works without key conversion.

The published Cityscapes model predicts 20 channels: the 19 trainIds and a
"background" channel 19 that was trained with ignore index 255. With
``background_channel=True`` the classifier keeps that channel (so the file loads
strictly) but :meth:`DiCENet.forward_raw` drops it: the model reports and returns
``num_classes`` = 19 channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.models.base import SegmentationModel
from labelbridge.models.espnetv2 import (
    DECODER_WIDTHS,
    PYRAMID_PROJ,
    ChannelShuffle,
    EfficientPyramidPool,
    GatedProjection,
    SeqBNAct,
    init_conv_bn_,
    up2,
)
from labelbridge.models.shape_ops import adaptive_avg_pool2d

#: Encoder widths (level1 = level2, level3, level4) per width multiplier ``s``
#: (EdgeNets' DiCENet configuration; only s=1.75 has a published segmentation file).
DICENET_WIDTHS: dict[float, tuple[int, int, int]] = {
    0.2: (16, 32, 64),
    0.5: (24, 48, 96),
    0.75: (24, 86, 172),
    1.0: (24, 116, 232),
    1.25: (24, 144, 288),
    1.5: (24, 176, 352),
    1.75: (24, 210, 420),
    2.0: (24, 244, 488),
    2.4: (24, 278, 556),
}
#: Number of shuffle-DiCE blocks after the strided unit of level3 and level4.
LEVEL_REPEATS: tuple[int, int] = (3, 7)
#: Input side for which the height- and width-wise convolutions were built (EdgeNets
#: builds DiCENet for 224x224 inputs; the published file has 28 rows/columns at level3).
REFERENCE_INPUT_SIDE: int = 224
#: Stride of level3 and level4 relative to the input.
LEVEL_STRIDES: tuple[int, int] = (8, 16)
#: Channel groups of the shuffle after the three dimension-wise branches.
DIMENSIONS: int = 3
#: Channel groups of the shuffle at the end of strided units and shuffle blocks.
SPLIT_GROUPS: int = 2
#: Fraction of a shuffle block's input passed through unchanged.
SPLIT_RATIO: float = 0.5
#: Channel reduction of the gate in a DiCE unit.
GATE_REDUCTION: int = 4
#: Input sides must be multiples of this (four stride-2 stages plus pyramid pooling).
DICENET_SIZE_DIVISOR: int = 32
#: Parameter-name prefix of the final classifier (re-initialised when the class count changes).
DICENET_CLASSIFIER_PREFIX: str = "eff_pool_128x128.merge_layer.3."


class CBR(nn.Module):
    """Conv (no bias) -> BN -> PReLU held in a Sequential named ``cbr`` (EdgeNets naming).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel: kernel size (odd, "same" padding).
        stride: stride.
        groups: convolution groups.
    """

    def __init__(
        self, in_ch: int, out_ch: int, *, kernel: int, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(
                in_ch,
                out_ch,
                kernel,
                stride=stride,
                padding=(kernel - 1) // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_ch),
            nn.PReLU(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbr(x)


def resize_along(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Resize ``x`` ``(B, C, H, W)`` along ``dim`` (2: height, 3: width) to ``size``:
    bilinear (``align_corners=True``) when growing, adaptive average pooling when
    shrinking; the other side is kept."""
    current = x.shape[dim]
    if current == size:
        return x
    target = (size, x.shape[3]) if dim == 2 else (x.shape[2], size)
    if current < size:
        return F.interpolate(x, size=target, mode="bilinear", align_corners=True)
    return adaptive_avg_pool2d(x, target)


class DiCE(nn.Module):
    """Dimension-wise convolution unit: depth-wise 3x3 convs along channels, height and
    width, dimension-wise fusion, grouped 3x3 projection, per-channel gate.

    Args:
        in_ch: input channels ``C``.
        out_ch: output channels.
        height: rows of the height-wise conv (maps of other heights are resized to it).
        width: columns of the width-wise conv (likewise).
    """

    def __init__(self, in_ch: int, out_ch: int, *, height: int, width: int) -> None:
        super().__init__()
        self.height = height
        self.width = width
        self.conv_channel = nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False)
        self.conv_width = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.conv_height = nn.Conv2d(height, height, 3, padding=1, groups=height, bias=False)
        self.br_act = SeqBNAct(DIMENSIONS * in_ch)
        self.vol_shuffle = ChannelShuffle(DIMENSIONS)
        self.weight_avg_layer = CBR(DIMENSIONS * in_ch, in_ch, kernel=1, groups=in_ch)
        self.proj_layer = CBR(in_ch, out_ch, kernel=3, groups=math.gcd(in_ch, out_ch))
        self.linear_comb_layer = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_ch, in_ch // GATE_REDUCTION, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch // GATE_REDUCTION, out_ch, 1, bias=False),
            nn.Sigmoid(),
        )

    def _height_wise(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``: rows become channels of the conv."""
        h = x.shape[2]
        y = resize_along(x, self.height, 2).transpose(1, 2)  # (B, height, C, W)
        y = self.conv_height(y).transpose(1, 2)  # (B, C, height, W)
        return resize_along(y, h, 2)

    def _width_wise(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``: columns become channels of the conv."""
        w = x.shape[3]
        y = resize_along(x, self.width, 3).transpose(1, 3)  # (B, width, H, C)
        y = self.conv_width(y).transpose(1, 3)  # (B, C, H, width)
        return resize_along(y, w, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, H, W)`` -> ``(B, out_ch, H, W)``."""
        merged = torch.cat([self.conv_channel(x), self._height_wise(x), self._width_wise(x)], 1)
        fused = self.weight_avg_layer(self.vol_shuffle(self.br_act(merged)))
        return self.proj_layer(fused) * self.linear_comb_layer(fused)


class StridedDiCE(nn.Module):
    """Down-sampling unit doubling the channels: ``shuffle(cat(left, right))`` with
    left = strided depth-wise 3x3 CBR + 1x1 CBR and right = 3x3 average pool (stride 2)
    + :class:`DiCE` + 1x1 CBR.

    Args:
        in_ch: input channels (the output has ``2 * in_ch``).
        height: height of the output map at the reference input size.
        width: width of the output map at the reference input size.
    """

    def __init__(self, in_ch: int, *, height: int, width: int) -> None:
        super().__init__()
        self.left_layer = nn.Sequential(
            CBR(in_ch, in_ch, kernel=3, stride=2, groups=in_ch),
            CBR(in_ch, in_ch, kernel=1),
        )
        self.right_layer = nn.Sequential(
            nn.AvgPool2d(kernel_size=3, stride=2, padding=1),
            DiCE(in_ch, in_ch, height=height, width=width),
            CBR(in_ch, in_ch, kernel=1),
        )
        self.shuffle = ChannelShuffle(SPLIT_GROUPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, 2C, H/2, W/2)``."""
        return self.shuffle(torch.cat([self.left_layer(x), self.right_layer(x)], 1))


class ShuffleDiCEBlock(nn.Module):
    """Channel split: half the input passes unchanged, the rest goes through a 1x1 CBR and
    a :class:`DiCE` unit; the two are concatenated and shuffled.

    Args:
        in_ch: input channels.
        out_ch: output channels (``> in_ch * SPLIT_RATIO``).
        height: map height at the reference input size.
        width: map width at the reference input size.
    """

    def __init__(self, in_ch: int, out_ch: int, *, height: int, width: int) -> None:
        super().__init__()
        self.left_part = round(SPLIT_RATIO * in_ch)
        right_out = out_ch - self.left_part
        self.layer_right = nn.Sequential(
            CBR(in_ch - self.left_part, right_out, kernel=1),
            DiCE(right_out, right_out, height=height, width=width),
        )
        self.shuffle = ChannelShuffle(SPLIT_GROUPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, H, W)`` -> ``(B, out_ch, H, W)``."""
        left, right = x[:, : self.left_part], x[:, self.left_part :]
        return self.shuffle(torch.cat([left, self.layer_right(right)], 1))


def _dice_level(in_ch: int, out_ch: int, repeats: int, side: int) -> nn.Sequential:
    """A strided DiCE unit (``in_ch -> 2 in_ch``) followed by ``repeats`` shuffle blocks
    (the first ``2 in_ch -> out_ch``), all built for ``side x side`` maps."""
    blocks: list[nn.Module] = [StridedDiCE(in_ch, height=side, width=side)]
    for i in range(repeats):
        blocks.append(
            ShuffleDiCEBlock(2 * in_ch if i == 0 else out_ch, out_ch, height=side, width=side)
        )
    return nn.Sequential(*blocks)


class DiCENetEncoder(nn.Module):
    """The DiCENet backbone up to level 4 (stride 16).

    Args:
        widths: channels of level1 (= level2), level3, level4.
    """

    def __init__(self, widths: tuple[int, int, int]) -> None:
        super().__init__()
        c1, c3, c4 = widths
        s3, s4 = (REFERENCE_INPUT_SIDE // stride for stride in LEVEL_STRIDES)
        self.level1 = CBR(3, c1, kernel=3, stride=2)
        self.level2 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.level3 = _dice_level(c1, c3, LEVEL_REPEATS[0], s3)
        self.level4 = _dice_level(c3, c4, LEVEL_REPEATS[1], s4)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` normalised -> feature maps at strides 2, 4, 8, 16."""
        l1 = self.level1(x)
        l2 = self.level2(l1)
        l3 = self.level3(l2)
        return [l1, l2, l3, self.level4(l3)]


class DiCENet(SegmentationModel):
    """DiCENet segmentation network.

    Args:
        num_classes: output classes ``C`` returned by :meth:`forward`.
        s: width multiplier, one of :data:`DICENET_WIDTHS`.
        background_channel: the classifier has ``C + 1`` channels, the last one being the
            published Cityscapes model's "background" channel, which :meth:`forward_raw`
            drops. Use it to load the published file strictly.

    Input sides are padded to multiples of 32 by :meth:`forward`; the logits are
    resized to the padded input with ``align_corners=True`` as in EdgeNets. Inputs with a
    side of at most :data:`REFERENCE_INPUT_SIDE` take other operations (the
    dimension-wise convolutions grow their maps instead of pooling them), so a graph
    exported with symbolic sizes from a larger example serves sides from 225 up.
    """

    classifier_prefixes = (DICENET_CLASSIFIER_PREFIX,)

    def __init__(
        self, num_classes: int, *, s: float = 1.75, background_channel: bool = False
    ) -> None:
        super().__init__(num_classes, size_divisor=DICENET_SIZE_DIVISOR)
        if s not in DICENET_WIDTHS:
            raise ValueError(
                f"DiCENet width s={s} not supported; choose from {sorted(DICENET_WIDTHS)}"
            )
        self.s = s
        self.background_channel = background_channel
        c1, c3, c4 = DICENET_WIDTHS[s]
        d1, d2, d3 = DECODER_WIDTHS
        head = num_classes + int(background_channel)
        self.base_net = DiCENetEncoder((c1, c3, c4))
        self.eff_pool_16x16 = EfficientPyramidPool(c4, PYRAMID_PROJ, d1)
        self.eff_pool_32x32 = EfficientPyramidPool(d1, PYRAMID_PROJ, d2)
        self.eff_pool_64x64 = EfficientPyramidPool(d2, PYRAMID_PROJ, d3)
        self.eff_pool_128x128 = EfficientPyramidPool(d3, PYRAMID_PROJ, head, classifier=True)
        self.proj_enc_32x32 = GatedProjection(c3, d1)
        self.proj_enc_64x64 = GatedProjection(c1, d2)
        self.proj_enc_128x128 = GatedProjection(c1, d3)
        self.bu_br_32x32 = nn.Sequential(nn.BatchNorm2d(d1), nn.PReLU(d1))
        self.bu_br_64x64 = nn.Sequential(nn.BatchNorm2d(d2), nn.PReLU(d2))
        self.bu_br_128x128 = nn.Sequential(nn.BatchNorm2d(d3), nn.PReLU(d3))
        init_conv_bn_(self)

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised ``(B, 3, H, W)`` (sides multiples of 32) -> ``"logits"``
        ``(B, C, H, W)`` and ``"features"`` (the stride-16 encoder output
        ``(B, c4, H/16, W/16)``)."""
        size = x.shape[-2:]
        l1, l2, l3, l4 = self.base_net(x)
        out = self.eff_pool_16x16(l4)
        out = self.eff_pool_32x32(self.bu_br_32x32(up2(out) + self.proj_enc_32x32(l3)))
        out = self.eff_pool_64x64(self.bu_br_64x64(up2(out) + self.proj_enc_64x64(l2)))
        out = self.eff_pool_128x128(self.bu_br_128x128(up2(out) + self.proj_enc_128x128(l1)))
        logits = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        if self.background_channel:
            logits = logits[:, : self.num_classes]
        return {"logits": logits, "features": l4}
