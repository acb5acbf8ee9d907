"""Hugging Face segmentation models (SegFormer, Mask2Former, UperNet) wrapped in the
:class:`~labelbridge.models.base.SegmentationModel` contract.

The named variants are built *offline* from configs holding the published sizes (random
initialisation; nothing is downloaded). ``hf:<hub id or local folder>`` loads with
``from_pretrained``; a hub id needs the internet, a local folder (``save_pretrained``
output) does not. All wrappers normalise inside the model, pad inputs to multiples of
32 and return logits at the input resolution. The normalisation is that of the local
folder's ``preprocessor_config.json`` where there is one (its ``image_mean`` and
``image_std``, converted to inputs in ``[0, 1]``, :func:`normalization_from_processor`),
else ImageNet statistics; the processor config is kept with the model
(:attr:`HFSegmentationModel.processor_config`) and in its checkpoints. The wrapped model
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

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from labelbridge.errors import CheckpointError, UserError
from labelbridge.models.base import SegmentationModel

log = logging.getLogger(__name__)

#: Input sides are padded to multiples of this (the coarsest backbone stride).
HF_SIZE_DIVISOR: int = 32
#: Floor of Mask2Former semantic scores before the log.
SEMANTIC_SCORE_EPS: float = 1e-6
#: File of a ``save_pretrained`` folder holding the image processor's settings.
PREPROCESSOR_FILE: str = "preprocessor_config.json"
#: ``rescale_factor`` of a Hugging Face image processor whose input is 0-255 pixels.
DEFAULT_RESCALE: float = 1 / 255
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


# --------------------------------------------------------------------- processors
def _per_channel(value: Any, key: str, origin: str) -> tuple[float, float, float]:
    values = [value] * 3 if isinstance(value, int | float) else value
    if (
        not isinstance(values, Sequence)
        or len(values) != 3
        or not all(isinstance(v, int | float) for v in values)
    ):
        raise CheckpointError(f"{origin}: {key} must be one number or three, got {value!r}")
    return (float(values[0]), float(values[1]), float(values[2]))


def normalization_from_processor(
    config: dict[str, Any], *, origin: str = PREPROCESSOR_FILE
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(mean, std)`` for inputs in ``[0, 1]`` that reproduce a Hugging Face image
    processor's ``(pixel * rescale_factor - image_mean) / image_std`` on 0-255 pixels.

    ``do_rescale: false`` means a factor of 1 (mean and std in 0-255 units),
    ``do_normalize: false`` a mean of 0 and a std of 1; missing keys take the
    processors' defaults (rescale by 1/255, ImageNet statistics).

    Raises:
        CheckpointError: a mean or std that is not one or three numbers, a std or
            rescale factor that is not positive.
    """
    factor = float(config.get("rescale_factor", DEFAULT_RESCALE))
    if not config.get("do_rescale", True):
        factor = 1.0
    if config.get("do_normalize", True):
        mean = _per_channel(config.get("image_mean", IMAGENET_MEAN), "image_mean", origin)
        std = _per_channel(config.get("image_std", IMAGENET_STD), "image_std", origin)
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    if factor <= 0 or min(std) <= 0:
        raise CheckpointError(
            f"{origin}: rescale_factor and image_std must be positive, got {factor} and {std}"
        )
    scale = 255.0 * factor  # a [0, 1] input x is the pixel value x * 255
    return (
        (mean[0] / scale, mean[1] / scale, mean[2] / scale),
        (std[0] / scale, std[1] / scale, std[2] / scale),
    )


def read_processor_config(folder: Path) -> dict[str, Any] | None:
    """The ``preprocessor_config.json`` of a local folder as a dict, ``None`` when absent.

    Raises:
        CheckpointError: the file is not a JSON object.
    """
    path = folder / PREPROCESSOR_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the image processor config: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------- wrappers
class HFSegmentationModel(SegmentationModel):
    """Base of the Hugging Face wrappers.

    Args:
        num_classes: output classes ``C``.
        hf_model: the ``transformers`` model (its ``config.num_labels`` must equal ``C``).
        processor: the model's image processor config (``preprocessor_config.json`` as a
            dict); its mean and std become the model's input normalisation
            (:func:`normalization_from_processor`). ``None``: ImageNet statistics.
    """

    #: ``config.model_type`` this wrapper handles.
    model_type: ClassVar[str] = ""
    #: Name of the wrapped ``transformers`` class.
    hf_class_name: ClassVar[str] = ""
    #: ``image_processor_type`` written for this model when it has no processor config.
    image_processor_type: ClassVar[str] = ""
    #: The ``transformers`` auto class that loads a saved folder of this model.
    auto_class_name: ClassVar[str] = "AutoModelForSemanticSegmentation"

    def __init__(
        self, num_classes: int, *, hf_model: nn.Module, processor: dict[str, Any] | None = None
    ) -> None:
        mean, std = (
            (IMAGENET_MEAN, IMAGENET_STD)
            if processor is None
            else normalization_from_processor(processor)
        )
        super().__init__(num_classes, mean=mean, std=std, size_divisor=HF_SIZE_DIVISOR)
        labels = hf_model.config.num_labels
        if labels != num_classes:
            raise ValueError(
                f"{type(hf_model).__name__} has {labels} labels, expected {num_classes}"
            )
        self.hf = hf_model
        #: The image processor config the model came with (``None``: none, ImageNet
        #: statistics); stored in checkpoints and written by Hugging Face exports.
        self.processor_config: dict[str, Any] | None = (
            dict(processor) if processor is not None else None
        )

    @classmethod
    def hf_class(cls) -> Any:
        """The wrapped ``transformers`` model class."""
        import transformers

        return getattr(transformers, cls.hf_class_name)

    @classmethod
    def from_config(
        cls, config: Any, *, processor: dict[str, Any] | None = None
    ) -> HFSegmentationModel:
        """Build with random weights from a ``transformers`` config (offline)."""
        return cls(config.num_labels, hf_model=cls.hf_class()(config), processor=processor)

    def processor_config_for_export(self) -> dict[str, Any]:
        """The ``preprocessor_config.json`` of a ``save_pretrained`` folder of this model:
        the processor config it came with (without one: no resizing) with the model's
        normalisation in the processors' usual form (rescale by 1/255, then
        ``(x - image_mean) / image_std``), so that ``AutoImageProcessor`` feeds the
        saved model what this wrapper feeds it."""
        config = dict(self.processor_config) if self.processor_config else {"do_resize": False}
        config.setdefault("image_processor_type", self.image_processor_type)
        config.update(
            do_rescale=True,
            rescale_factor=DEFAULT_RESCALE,
            do_normalize=True,
            image_mean=list(self.input_mean),
            image_std=list(self.input_std),
        )
        return config

    def hf_config_dict(self) -> dict[str, Any]:
        """The wrapped model's config as plain data (stored in checkpoints, so that they
        rebuild the exact architecture without the hub)."""
        return self.hf.config.to_dict()


class SegformerSegmentation(HFSegmentationModel):
    """SegFormer (``SegformerForSemanticSegmentation``); logits come at 1/4 resolution and
    are resized to the input by :meth:`forward_outputs`."""

    model_type = "segformer"
    hf_class_name = "SegformerForSemanticSegmentation"
    image_processor_type = "SegformerImageProcessor"
    classifier_prefixes = ("hf.decode_head.classifier.",)

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised ``(B, 3, H, W)`` -> ``"logits"`` ``(B, C, H/4, W/4)``."""
        return {"logits": self.hf(pixel_values=x).logits}


class UperNetSegmentation(HFSegmentationModel):
    """UperNet (``UperNetForSemanticSegmentation``) with a ConvNeXt backbone."""

    model_type = "upernet"
    hf_class_name = "UperNetForSemanticSegmentation"
    image_processor_type = "SegformerImageProcessor"  # as the published UperNet checkpoints
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
    image_processor_type = "Mask2FormerImageProcessor"
    auto_class_name = "AutoModelForUniversalSegmentation"
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
    config: dict[str, Any],
    num_classes: int,
    *,
    processor: dict[str, Any] | None = None,
    origin: str = "<config>",
) -> HFSegmentationModel:
    """Rebuild a wrapper (random weights) from :meth:`HFSegmentationModel.hf_config_dict` data
    and, where it had one, its image processor config.

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
    return wrapper.from_config(cfg, processor=processor)


def hf_from_pretrained(source: str, num_classes: int) -> HFSegmentationModel:
    """``from_pretrained`` a hub id or a local ``save_pretrained`` folder.

    When the stored class count differs from ``num_classes`` the classifier is
    re-initialised (``ignore_mismatched_sizes``) and this is logged. A local folder's
    ``preprocessor_config.json`` sets the input normalisation (else ImageNet statistics).

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
    processor = read_processor_config(Path(source)) if local else None
    if processor is not None:
        mean, std = normalization_from_processor(processor, origin=f"{source}/{PREPROCESSOR_FILE}")
        log.info(
            "%s: input normalisation from %s: mean %s, std %s", source, PREPROCESSOR_FILE, mean, std
        )
    return wrapper(num_classes, hf_model=hf_model, processor=processor)
