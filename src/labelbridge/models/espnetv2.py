"""ESPNetv2 for semantic segmentation (Mehta et al., CVPR 2019), segmentation variant of
the EdgeNets code base, written so that the published Cityscapes files load strictly.

Structure (``s`` scales the encoder widths, table :data:`ENCODER_WIDTHS`)::

    level1      3x3 conv stride 2 + BN + PReLU                               H/2
    level2_0    strided EESP  ||  avg-pool, + input reinforcement, PReLU     H/4
    level3_0    idem, then level3 = 3 EESP units                             H/8
    level4_0    idem, then level4 = 7 EESP units                             H/16
    decoder     bu_dec_l1 (efficient pyramid pool) on level4, then three times:
                x2 upsample + merge_enc_dec (gated grouped 3x3 projection of an encoder
                level) -> bu_br (BN + PReLU) -> bu_dec (pyramid pool)        H/2
    output      bilinear (align_corners=True) to the input size

An EESP unit reduces the channels with a grouped 1x1 conv to ``n = out/4``, runs four
depth-wise 3x3 convs with increasing dilation, adds them hierarchically (branch ``i``
+= branch ``i-1``), concatenates, applies BN + PReLU, expands with a grouped 1x1 conv +
BN and, for stride 1, adds the input and applies PReLU.

Module and parameter names follow the published files exactly
(``base_net.level2_0.eesp.spp_dw.0.conv.weight``, ``bu_dec_l4.merge_layer.3.bias``, ...),
so ``load_state_dict(strict=True)`` works without key conversion.

The published Cityscapes models predict 20 channels: the 19 trainIds and a
"background" channel 19 that was trained with ignore index 255. With
``background_channel=True`` the classifier keeps that channel (so the file loads
strictly) but :meth:`ESPNetv2.forward_raw` drops it: the model reports and returns
``num_classes`` = 19 channels.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.models.base import SegmentationModel
from labelbridge.models.shape_ops import adaptive_avg_pool2d

#: Encoder widths (level1, level2, level3, level4) per width multiplier ``s``.
ENCODER_WIDTHS: dict[float, tuple[int, int, int, int]] = {
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.25: (32, 80, 160, 320),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
#: Number of EESP units after the strided unit of level3 and level4.
LEVEL_REPEATS: tuple[int, int] = (3, 7)
#: Largest receptive field (effective kernel size) of an EESP branch at
#: level2_0, level3_0, level3, level4_0, level4.
RECEPTIVE_LIMITS: tuple[int, int, int, int, int] = (13, 11, 9, 9, 7)
#: Parallel branches of every EESP unit.
EESP_BRANCHES: int = 4
#: Channels of the input-reinforcement path (the RGB image).
REINFORCEMENT_CHANNELS: int = 3
#: Decoder widths after bu_dec_l1, bu_dec_l2, bu_dec_l3 (EdgeNets' Cityscapes setting).
DECODER_WIDTHS: tuple[int, int, int] = (64, 48, 32)
#: Projection width of the pyramid-pool modules. EdgeNets derives it as
#: ``min(C // 2, 16)`` from the head channels ``C``; the published Cityscapes files have
#: ``C = 20`` -> 10. It is fixed here so that every class count shares the decoder
#: with the published weights (only the final 1x1 classifier differs).
PYRAMID_PROJ: int = 10
#: Scales of the efficient pyramid pool branches (largest first).
PYRAMID_SCALES: tuple[float, ...] = (2.0, 1.5, 1.0, 0.5, 0.1)
#: Smallest side of a pooled / upsampled pyramid branch.
PYRAMID_MIN_SIDE: int = 5
#: :data:`PYRAMID_SCALES` as exact fractions: a branch side ``ceil(side * scale)`` is
#: computed in integers, which equals the float ``math.ceil`` of EdgeNets for every side
#: below 100 000 (``tests/models/test_export.py``) and keeps exported programs free of
#: float size arithmetic (serialisable, the same in every runtime).
PYRAMID_FRACTIONS: tuple[Fraction, ...] = tuple(
    Fraction(s).limit_denominator(100) for s in PYRAMID_SCALES
)
#: Input sides must be multiples of this (four stride-2 stages plus pyramid pooling).
ESPNET_SIZE_DIVISOR: int = 32
#: Parameter-name prefix of the final classifier (re-initialised when the class count changes).
CLASSIFIER_PREFIX: str = "bu_dec_l4.merge_layer.3."


# --------------------------------------------------------------------- building blocks


def init_conv_bn_(module: nn.Module) -> None:
    """Kaiming-normal convolutions (zero bias), unit/zero BatchNorm, in place."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def pyramid_side(side: int, scale: Fraction) -> int:
    """``max(ceil(side * scale), PYRAMID_MIN_SIDE)`` in integer arithmetic (``side`` may be
    a symbolic size while a graph is exported). Only non-negative operands are divided:
    ONNX's integer division truncates, Python's floors."""
    p, q = scale.numerator, scale.denominator
    return torch.sym_max((side * p + q - 1) // q, PYRAMID_MIN_SIDE)


def up2(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, 2H, 2W)``, bilinear as in the EdgeNets decoders."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class ConvBNAct(nn.Module):
    """Conv (no bias) -> BN -> optional PReLU, parameters named ``conv``/``bn``/``act``.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel: kernel size (odd; "same" padding times ``dilation``).
        stride: stride.
        groups: convolution groups.
        dilation: dilation rate.
        bn: apply batch norm.
        act: apply PReLU (per channel).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        bn: bool = True,
        act: bool = True,
    ) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.conv = nn.Conv2d(
            in_ch,
            out_ch,
            kernel,
            stride=stride,
            padding=pad,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_ch) if bn else None
        self.act = nn.PReLU(out_ch) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x


class BNAct(nn.Module):
    """BN -> PReLU, parameters named ``bn``/``act``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class SeqConvBNAct(nn.Module):
    """Conv (no bias) -> BN -> PReLU held in a Sequential named ``cbr`` (decoder naming).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel: kernel size (odd, "same" padding).
        groups: convolution groups.
    """

    def __init__(self, in_ch: int, out_ch: int, *, kernel: int, groups: int = 1) -> None:
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel, padding=(kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.PReLU(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbr(x)


class SeqBNAct(nn.Module):
    """BN -> PReLU held in a Sequential named ``br`` (decoder naming)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.br = nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.br(x)


class ChannelShuffle(nn.Module):
    """Interleave ``groups`` channel groups: ``(B, g*c, H, W)`` -> same shape, shuffled."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _branch_dilations(branches: int, receptive_limit: int) -> list[int]:
    """Dilation rates of the EESP branches: branch ``i`` wants an effective 3x3 kernel of
    size ``3 + 2i`` (dilation ``i + 1``); sizes above ``receptive_limit`` fall back to
    dilation 1; sorted ascending."""
    return sorted(i + 1 if 3 + 2 * i <= receptive_limit else 1 for i in range(branches))


class EESP(nn.Module):
    """Extremely Efficient Spatial Pyramid unit (reduce -> split -> transform -> merge).

    Args:
        in_ch: input channels.
        out_ch: output channels (divisible by ``branches``).
        stride: 1, or 2 inside :class:`StridedEESP` (then the merged map is returned
            before the residual and activation).
        branches: parallel depth-wise branches.
        receptive_limit: largest effective kernel size of a branch.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        stride: int = 1,
        branches: int = EESP_BRANCHES,
        receptive_limit: int,
    ) -> None:
        super().__init__()
        if out_ch % branches:
            raise ValueError(f"EESP output channels {out_ch} not divisible by {branches} branches")
        n = out_ch // branches
        self.stride = stride
        self.proj_1x1 = ConvBNAct(in_ch, n, kernel=1, groups=branches)
        self.spp_dw = nn.ModuleList(
            ConvBNAct(n, n, kernel=3, stride=stride, groups=n, dilation=d, bn=False, act=False)
            for d in _branch_dilations(branches, receptive_limit)
        )
        self.conv_1x1_exp = ConvBNAct(out_ch, out_ch, kernel=1, groups=branches, act=False)
        self.br_after_cat = BNAct(out_ch)
        self.module_act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, H, W)`` -> ``(B, out_ch, H/stride, W/stride)``."""
        reduced = self.proj_1x1(x)
        outs = [self.spp_dw[0](reduced)]
        for branch in self.spp_dw[1:]:
            outs.append(branch(reduced) + outs[-1])  # hierarchical feature fusion
        merged = self.conv_1x1_exp(self.br_after_cat(torch.cat(outs, dim=1)))
        if self.stride > 1:
            return merged
        if merged.shape == x.shape:
            merged = merged + x
        return self.module_act(merged)


class StridedEESP(nn.Module):
    """Down-sampling block: ``cat(avg_pool(x), EESP_stride2(x))`` plus a projection of the
    input image pooled to the same size (input reinforcement), then PReLU.

    Args:
        in_ch: input channels.
        out_ch: output channels (``> in_ch``; the EESP branch gives ``out_ch - in_ch``).
        receptive_limit: largest effective kernel size of the EESP branches.
    """

    def __init__(self, in_ch: int, out_ch: int, *, receptive_limit: int) -> None:
        super().__init__()
        self.eesp = EESP(in_ch, out_ch - in_ch, stride=2, receptive_limit=receptive_limit)
        self.inp_reinf = nn.Sequential(
            ConvBNAct(REINFORCEMENT_CHANNELS, REINFORCEMENT_CHANNELS, kernel=3),
            ConvBNAct(REINFORCEMENT_CHANNELS, out_ch, kernel=1, act=False),
        )
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, in_ch, H, W)``, ``image`` ``(B, 3, H0, W0)`` (normalised input) ->
        ``(B, out_ch, H/2, W/2)``."""
        pooled = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)
        out = torch.cat([pooled, self.eesp(x)], dim=1)
        target_h = pooled.shape[-2]
        while image.shape[-2] > target_h:
            image = F.avg_pool2d(image, kernel_size=3, stride=2, padding=1)
        if image.shape[-2:] != pooled.shape[-2:]:
            raise ValueError(
                f"input reinforcement: image pooled to {tuple(image.shape[-2:])} does not match "
                f"{tuple(pooled.shape[-2:])}; input sides must be multiples of {ESPNET_SIZE_DIVISOR}"
            )
        return self.act(out + self.inp_reinf(image))


class EfficientPyramidPool(nn.Module):
    """PSP-like context module: project to ``proj`` channels, run a depth-wise 3x3 conv at
    several scales of the map (resized there and back), concatenate, BN + PReLU, channel
    shuffle, grouped 3x3 conv back to ``proj``, 1x1 conv to ``out_ch`` (+ BN + PReLU
    unless it is the classifier).

    Args:
        in_ch: input channels.
        proj: projection channels.
        out_ch: output channels.
        classifier: last layer of the network: the 1x1 conv has a bias and no BN/PReLU.
    """

    def __init__(self, in_ch: int, proj: int, out_ch: int, *, classifier: bool = False) -> None:
        super().__init__()
        n = len(PYRAMID_SCALES)
        self.projection_layer = SeqConvBNAct(in_ch, proj, kernel=1)
        self.stages = nn.ModuleList(
            nn.Conv2d(proj, proj, 3, padding=1, groups=proj, bias=False) for _ in PYRAMID_SCALES
        )
        self.merge_layer = nn.Sequential(
            SeqBNAct(proj * n),
            ChannelShuffle(n),
            SeqConvBNAct(proj * n, proj, kernel=3, groups=proj),
            nn.Conv2d(proj, out_ch, 1, bias=classifier),
        )
        self.br = None if classifier else SeqBNAct(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, H, W)`` -> ``(B, out_ch, H, W)``."""
        x = self.projection_layer(x)
        h, w = x.shape[-2:]
        outs = []
        for scale, fraction, stage in zip(
            PYRAMID_SCALES, PYRAMID_FRACTIONS, self.stages, strict=True
        ):
            hs, ws = pyramid_side(h, fraction), pyramid_side(w, fraction)
            if scale < 1.0:
                y = stage(adaptive_avg_pool2d(x, (hs, ws)))
                y = F.interpolate(y, (h, w), mode="bilinear", align_corners=True)
            elif scale > 1.0:
                y = stage(F.interpolate(x, (hs, ws), mode="bilinear", align_corners=True))
                y = adaptive_avg_pool2d(y, (h, w))
            else:
                y = stage(x)
            outs.append(y)
        out = self.merge_layer(torch.cat(outs, dim=1))
        return out if self.br is None else self.br(out)


class GatedProjection(nn.Module):
    """Encoder-to-decoder projection: grouped 3x3 conv + BN + PReLU, multiplied by a
    per-channel sigmoid gate computed from the globally pooled input.

    Args:
        in_ch: input channels.
        out_ch: output channels.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.wt_layer = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.Sigmoid()
        )
        self.expansion_layer = SeqConvBNAct(in_ch, out_ch, kernel=3, groups=math.gcd(in_ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, H, W)`` -> ``(B, out_ch, H, W)``."""
        return self.expansion_layer(x) * self.wt_layer(x)


class ESPNetv2Encoder(nn.Module):
    """The ESPNetv2 backbone up to level 4 (stride 16).

    Args:
        widths: channels of level1..level4.
    """

    def __init__(self, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        c1, c2, c3, c4 = widths
        lim = RECEPTIVE_LIMITS
        self.level1 = ConvBNAct(3, c1, kernel=3, stride=2)
        self.level2_0 = StridedEESP(c1, c2, receptive_limit=lim[0])
        self.level3_0 = StridedEESP(c2, c3, receptive_limit=lim[1])
        self.level3 = nn.ModuleList(
            EESP(c3, c3, receptive_limit=lim[2]) for _ in range(LEVEL_REPEATS[0])
        )
        self.level4_0 = StridedEESP(c3, c4, receptive_limit=lim[3])
        self.level4 = nn.ModuleList(
            EESP(c4, c4, receptive_limit=lim[4]) for _ in range(LEVEL_REPEATS[1])
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` normalised -> feature maps at strides 2, 4, 8, 16."""
        l1 = self.level1(x)
        l2 = self.level2_0(l1, x)
        l3 = self.level3_0(l2, x)
        for unit in self.level3:
            l3 = unit(l3)
        l4 = self.level4_0(l3, x)
        for unit in self.level4:
            l4 = unit(l4)
        return [l1, l2, l3, l4]


class ESPNetv2(SegmentationModel):
    """ESPNetv2 segmentation network.

    Args:
        num_classes: output classes ``C`` returned by :meth:`forward`.
        s: width multiplier, one of :data:`ENCODER_WIDTHS` (0.5, 1.0, 1.25, 1.5, 2.0).
        background_channel: the classifier has ``C + 1`` channels, the last one being the
            published Cityscapes models' "background" channel, which :meth:`forward_raw`
            drops. Use it to load the published files strictly.

    Input sides are padded to multiples of 32 by :meth:`forward`; the logits are
    resized to the padded input with ``align_corners=True`` as in EdgeNets.
    """

    classifier_prefixes = (CLASSIFIER_PREFIX,)

    def __init__(
        self, num_classes: int, *, s: float = 2.0, background_channel: bool = False
    ) -> None:
        super().__init__(num_classes, size_divisor=ESPNET_SIZE_DIVISOR)
        if s not in ENCODER_WIDTHS:
            raise ValueError(
                f"ESPNetv2 width s={s} not supported; choose from {sorted(ENCODER_WIDTHS)}"
            )
        self.s = s
        self.background_channel = background_channel
        widths = ENCODER_WIDTHS[s]
        d1, d2, d3 = DECODER_WIDTHS
        head = num_classes + int(background_channel)
        self.base_net = ESPNetv2Encoder(widths)
        self.bu_dec_l1 = EfficientPyramidPool(widths[3], PYRAMID_PROJ, d1)
        self.bu_dec_l2 = EfficientPyramidPool(d1, PYRAMID_PROJ, d2)
        self.bu_dec_l3 = EfficientPyramidPool(d2, PYRAMID_PROJ, d3)
        self.bu_dec_l4 = EfficientPyramidPool(d3, PYRAMID_PROJ, head, classifier=True)
        self.merge_enc_dec_l2 = GatedProjection(widths[2], d1)
        self.merge_enc_dec_l3 = GatedProjection(widths[1], d2)
        self.merge_enc_dec_l4 = GatedProjection(widths[0], d3)
        self.bu_br_l2 = nn.Sequential(nn.BatchNorm2d(d1), nn.PReLU(d1))
        self.bu_br_l3 = nn.Sequential(nn.BatchNorm2d(d2), nn.PReLU(d2))
        self.bu_br_l4 = nn.Sequential(nn.BatchNorm2d(d3), nn.PReLU(d3))
        init_conv_bn_(self)

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised ``(B, 3, H, W)`` (sides multiples of 32) -> ``"logits"``
        ``(B, C, H, W)`` and ``"features"`` (the stride-16 encoder output
        ``(B, widths[3], H/16, W/16)``)."""
        size = x.shape[-2:]
        l1, l2, l3, l4 = self.base_net(x)
        out = self.bu_dec_l1(l4)
        out = self.bu_dec_l2(self.bu_br_l2(up2(out) + self.merge_enc_dec_l2(l3)))
        out = self.bu_dec_l3(self.bu_br_l3(up2(out) + self.merge_enc_dec_l3(l2)))
        out = self.bu_dec_l4(self.bu_br_l4(up2(out) + self.merge_enc_dec_l4(l1)))
        logits = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        if self.background_channel:
            logits = logits[:, : self.num_classes]
        return {"logits": logits, "features": l4}
