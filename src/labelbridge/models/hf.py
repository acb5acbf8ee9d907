"""Hugging Face segmentation models (SegFormer, Mask2Former, UperNet) wrapped in the
:class:`~labelbridge.models.base.SegmentationModel` contract.

The named variants are built *offline* from configs holding the published sizes (random
initialisation; nothing is downloaded). ``hf:<hub id or local folder>`` loads with
``from_pretrained``; a hub id needs the internet, a local folder (``save_pretrained``
output) does not. All wrappers normalise with ImageNet statistics inside the model, pad
inputs to multiples of 32 and return logits at the input resolution. The wrapped model
is the attribute ``hf``, so state-dict keys start with ``"hf."``.

Mask2Former returns *semantic scores*, not per-pixel logits: with class probabilities
``p[q, c]`` (softmax over classes, the no-object class dropped) and mask probabilities
``m[q, h, w]`` (sigmoid), the score of class ``c`` is ``sum_q p[q, c] m[q, h, w]`` (as in
``Mask2FormerImageProcessor.post_process_semantic_segmentation``); ``"logits"`` holds
``log(max(score, SEMANTIC_SCORE_EPS))``, so ``argmax`` and ``softmax`` (normalised
scores) behave as expected. Its :meth:`Mask2FormerSegmentation.compute_loss` converts
semantic label maps into the per-image binary masks Mask2Former trains on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import CheckpointError, UserError
from labelbridge.models.base import SegmentationModel

log = logging.getLogger(__name__)

#: Input sides are padded to multiples of this (the coarsest backbone stride).
HF_SIZE_DIVISOR: int = 32
#: Floor of Mask2Former semantic scores before the log.
SEMANTIC_SCORE_EPS: float = 1e-6
#: Backbone stages fed to the decoders (Swin / ConvNeXt feature pyramids).
PYRAMID_STAGES: tuple[str, ...] = ("stage1", "stage2", "stage3", "stage4")

#: SegFormer MiT-b0..b5 encoder sizes (Xie et al., NeurIPS 2021) and decoder width.
SEGFORMER_VARIANTS: dict[str, dict[str, Any]] = {
    "b0": {"hidden_sizes": [32, 64, 160, 256], "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "b1": {"hidden_sizes": [64, 128, 320, 512], "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "b2": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 4, 6, 3], "decoder_hidden_size": 768},
    "b3": {
        "hidden_sizes": [64, 128, 320, 512],
        "depths": [3, 4, 18, 3],
        "decoder_hidden_size": 768,
    },
    "b4": {
        "hidden_sizes": [64, 128, 320, 512],
        "depths": [3, 8, 27, 3],
        "decoder_hidden_size": 768,
    },
    "b5": {
        "hidden_sizes": [64, 128, 320, 512],
        "depths": [3, 6, 40, 3],
        "decoder_hidden_size": 768,
    },
}


def _swin(embed_dim: int, depths: list[int], window_size: int) -> dict[str, Any]:
    """Swin backbone sizes: 32 channels per attention head, the heads doubling per stage."""
    heads = [embed_dim // 32 * 2**stage for stage in range(4)]
    return {
        "embed_dim": embed_dim,
        "depths": depths,
        "num_heads": heads,
        "window_size": window_size,
    }


#: Swin-T/S/B/L backbone sizes (Liu et al., ICCV 2021) as used by Mask2Former.
SWIN_VARIANTS: dict[str, dict[str, Any]] = {
    "swin-t": _swin(96, [2, 2, 6, 2], window_size=7),
    "swin-s": _swin(96, [2, 2, 18, 2], window_size=7),
    "swin-b": _swin(128, [2, 2, 18, 2], window_size=12),
    "swin-l": _swin(192, [2, 2, 18, 2], window_size=12),
}
#: ConvNeXt backbone sizes (Liu et al., CVPR 2022) for UperNet.
CONVNEXT_VARIANTS: dict[str, dict[str, Any]] = {
    "convnext-t": {"hidden_sizes": [96, 192, 384, 768], "depths": [3, 3, 9, 3]},
}


def _variant(table: dict[str, dict[str, Any]], variant: str, family: str) -> dict[str, Any]:
    try:
        return dict(table[variant])
    except KeyError:
        raise UserError(
            f"unknown {family} variant {variant!r}; valid: {', '.join(table)}"
        ) from None


def segformer_config(variant: str, num_classes: int) -> Any:
    """``SegformerConfig`` of MiT-``variant`` (``"b0"`` .. ``"b5"``) with ``num_classes`` labels."""
    from transformers import SegformerConfig

    return SegformerConfig(
        num_labels=num_classes, **_variant(SEGFORMER_VARIANTS, variant, "segformer")
    )


def mask2former_config(variant: str, num_classes: int) -> Any:
    """``Mask2FormerConfig`` with a Swin-``variant`` backbone (``"swin-t"`` .. ``"swin-l"``)
    and the library's default (published) decoder sizes: 100 queries, 256 hidden."""
    from transformers import Mask2FormerConfig, SwinConfig

    swin = SwinConfig(
        out_features=list(PYRAMID_STAGES), **_variant(SWIN_VARIANTS, variant, "mask2former")
    )
    return Mask2FormerConfig(backbone_config=swin, num_labels=num_classes)


def upernet_config(variant: str, num_classes: int) -> Any:
    """``UperNetConfig`` with a ConvNeXt-``variant`` backbone (``"convnext-t"``)."""
    from transformers import ConvNextConfig, UperNetConfig

    sizes = _variant(CONVNEXT_VARIANTS, variant, "upernet")
    backbone = ConvNextConfig(out_features=list(PYRAMID_STAGES), **sizes)
    return UperNetConfig(
        backbone_config=backbone,
        num_labels=num_classes,
        auxiliary_in_channels=sizes["hidden_sizes"][2],
    )


# --------------------------------------------------------------------- wrappers
class HFSegmentationModel(SegmentationModel):
    """Base of the Hugging Face wrappers.

    Args:
        num_classes: output classes ``C``.
        hf_model: the ``transformers`` model (its ``config.num_labels`` must equal ``C``).
    """

    #: ``config.model_type`` this wrapper handles.
    model_type: ClassVar[str] = ""
    #: Name of the wrapped ``transformers`` class.
    hf_class_name: ClassVar[str] = ""

    def __init__(self, num_classes: int, *, hf_model: nn.Module) -> None:
        super().__init__(num_classes, size_divisor=HF_SIZE_DIVISOR)
        labels = hf_model.config.num_labels
        if labels != num_classes:
            raise ValueError(
                f"{type(hf_model).__name__} has {labels} labels, expected {num_classes}"
            )
        self.hf = hf_model

    @classmethod
    def hf_class(cls) -> Any:
        """The wrapped ``transformers`` model class."""
        import transformers

        return getattr(transformers, cls.hf_class_name)

    @classmethod
    def from_config(cls, config: Any) -> HFSegmentationModel:
        """Build with random weights from a ``transformers`` config (offline)."""
        return cls(config.num_labels, hf_model=cls.hf_class()(config))

    def hf_config_dict(self) -> dict[str, Any]:
        """The wrapped model's config as plain data (stored in checkpoints, so that they
        rebuild the exact architecture without the hub)."""
        return self.hf.config.to_dict()


class SegformerSegmentation(HFSegmentationModel):
    """SegFormer (``SegformerForSemanticSegmentation``); logits come at 1/4 resolution and
    are resized to the input by :meth:`forward_outputs`."""

    model_type = "segformer"
    hf_class_name = "SegformerForSemanticSegmentation"
    classifier_prefixes = ("hf.decode_head.classifier.",)

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised ``(B, 3, H, W)`` -> ``"logits"`` ``(B, C, H/4, W/4)``."""
        return {"logits": self.hf(pixel_values=x).logits}


class UperNetSegmentation(HFSegmentationModel):
    """UperNet (``UperNetForSemanticSegmentation``) with a ConvNeXt backbone."""

    model_type = "upernet"
    hf_class_name = "UperNetForSemanticSegmentation"
    classifier_prefixes = ("hf.decode_head.classifier.", "hf.auxiliary_head.classifier.")

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised ``(B, 3, H, W)`` -> ``"logits"`` ``(B, C, H, W)``."""
        return {"logits": self.hf(pixel_values=x).logits}


def semantic_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """Mask2Former semantic inference.

    Args:
        class_logits: ``(B, Q, C + 1)``; the last class is "no object".
        mask_logits: ``(B, Q, h, w)``.

    Returns:
        ``(B, C, h, w)`` scores ``sum_q softmax(class)[q, c] * sigmoid(mask)[q]``, in
        ``[0, Q]``.
    """
    probs = class_logits.softmax(dim=-1)[..., :-1]
    return torch.einsum("bqc,bqhw->bchw", probs, mask_logits.sigmoid())


def semantic_to_mask_targets(target: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Semantic label maps -> Mask2Former targets, one binary mask per present class.

    Pixels with ``IGNORE_INDEX`` belong to no mask, so every predicted mask is pushed
    towards 0 there (as ``Mask2FormerImageProcessor`` does with ``ignore_index``).

    Args:
        target: ``(B, H, W)`` int64 train ids, ``IGNORE_INDEX`` ignored.

    Returns:
        ``mask_labels``: per image ``(N_i, H, W)`` float in ``{0, 1}``; ``class_labels``:
        per image ``(N_i,)`` int64, the classes in ascending order (``N_i`` may be 0).
    """
    masks: list[torch.Tensor] = []
    classes: list[torch.Tensor] = []
    for t in target:
        present = torch.unique(t[t != IGNORE_INDEX])
        classes.append(present.to(torch.int64))
        masks.append((t.unsqueeze(0) == present.view(-1, 1, 1)).to(torch.float32))
    return masks, classes


class Mask2FormerSegmentation(HFSegmentationModel):
    """Mask2Former (``Mask2FormerForUniversalSegmentation``) for semantic segmentation.

    ``"logits"`` are log semantic scores (see the module doc), ``(B, C, H, W)`` at the
    input resolution: scores are combined at 1/4 resolution and resized bilinearly.
    """

    model_type = "mask2former"
    hf_class_name = "Mask2FormerForUniversalSegmentation"
    classifier_prefixes = ("hf.class_predictor.",)
    pixel_targets = False  # the Hungarian matching of its set loss needs hard masks

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised ``(B, 3, H, W)`` -> ``"logits"`` ``(B, C, H, W)`` log scores."""
        out = self.hf(pixel_values=x)
        scores = semantic_scores(out.class_queries_logits, out.masks_queries_logits)
        scores = F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return {"logits": scores.clamp_min(SEMANTIC_SCORE_EPS).log()}

    def compute_loss(self, images: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mask2Former's matched mask + dice + class loss (with auxiliary decoder losses).

        Args:
            images: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
            target: ``(B, H, W)`` int64 train ids, ``IGNORE_INDEX`` ignored.

        Returns:
            ``{"loss": scalar}``.
        """
        h, w = images.shape[-2:]
        d = self.size_divisor
        ph, pw = (-h) % d, (-w) % d
        x = self.normalize(images)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            target = F.pad(target, (0, pw, 0, ph), value=IGNORE_INDEX)
        mask_labels, class_labels = semantic_to_mask_targets(target)
        out = self.hf(pixel_values=x, mask_labels=mask_labels, class_labels=class_labels)
        return {"loss": out.loss}


HF_WRAPPERS: dict[str, type[HFSegmentationModel]] = {
    cls.model_type: cls
    for cls in (SegformerSegmentation, Mask2FormerSegmentation, UperNetSegmentation)
}


def _wrapper_for(model_type: str, origin: str) -> type[HFSegmentationModel]:
    try:
        return HF_WRAPPERS[model_type]
    except KeyError:
        raise CheckpointError(
            f"{origin}: Hugging Face model type {model_type!r} is not supported; "
            f"supported: {', '.join(HF_WRAPPERS)}"
        ) from None


def hf_model_from_config_dict(
    config: dict[str, Any], num_classes: int, *, origin: str = "<config>"
) -> HFSegmentationModel:
    """Rebuild a wrapper (random weights) from :meth:`HFSegmentationModel.hf_config_dict` data.

    Raises:
        CheckpointError: unsupported model type, or the config has another class count.
    """
    from transformers import AutoConfig

    model_type = str(config.get("model_type", ""))
    wrapper = _wrapper_for(model_type, origin)
    fields = {k: v for k, v in config.items() if k != "model_type"}
    cfg = AutoConfig.for_model(model_type, **fields)
    if cfg.num_labels != num_classes:
        raise CheckpointError(
            f"{origin}: the stored model config has {cfg.num_labels} labels, expected {num_classes}"
        )
    return wrapper.from_config(cfg)


def hf_from_pretrained(source: str, num_classes: int) -> HFSegmentationModel:
    """``from_pretrained`` a hub id or a local ``save_pretrained`` folder.

    When the stored class count differs from ``num_classes`` the classifier is
    re-initialised (``ignore_mismatched_sizes``) and this is logged.

    Raises:
        CheckpointError: the source cannot be read or holds an unsupported model type.
    """
    from transformers import AutoConfig

    local = Path(source).is_dir()
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local)
    except (OSError, ValueError) as exc:
        where = "local folder" if local else "hub id (needs the internet) or folder"
        raise CheckpointError(
            f"{source}: cannot read a Hugging Face model config from this {where}: {exc}"
        ) from None
    wrapper = _wrapper_for(config.model_type, source)
    if config.num_labels != num_classes:
        log.info(
            "%s: %d labels stored, %d requested: the classifier (%s) is re-initialised",
            source,
            config.num_labels,
            num_classes,
            ", ".join(wrapper.classifier_prefixes),
        )
    try:
        hf_model = wrapper.hf_class().from_pretrained(
            source, num_labels=num_classes, ignore_mismatched_sizes=True, local_files_only=local
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{source}: cannot load the Hugging Face model weights: {exc}"
        ) from None
    return wrapper(num_classes, hf_model=hf_model)
