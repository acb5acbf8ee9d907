"""Model zoo: ``create_model(spec, num_classes, weights)`` over a plain registry, ESPNetv2
(loading the published EdgeNets Cityscapes files), Hugging Face models built offline,
and self-contained checkpoints."""

from labelbridge.models.base import SegmentationModel, TinySegNet
from labelbridge.models.checkpoint import (
    FORMAT_VERSION,
    LoadedModel,
    checkpoint_meta,
    import_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from labelbridge.models.espnetv2 import ESPNetv2
from labelbridge.models.hf import (
    HFSegmentationModel,
    Mask2FormerSegmentation,
    SegformerSegmentation,
    UperNetSegmentation,
    semantic_to_mask_targets,
)
from labelbridge.models.inference import image_to_tensor, predict_logits
from labelbridge.models.loading import load_model
from labelbridge.models.zoo import MODELS, ModelSpec, count_parameters, create_model, parse_spec

__all__ = [
    "FORMAT_VERSION",
    "MODELS",
    "ESPNetv2",
    "HFSegmentationModel",
    "LoadedModel",
    "Mask2FormerSegmentation",
    "ModelSpec",
    "SegformerSegmentation",
    "SegmentationModel",
    "TinySegNet",
    "UperNetSegmentation",
    "checkpoint_meta",
    "count_parameters",
    "create_model",
    "image_to_tensor",
    "import_state_dict",
    "load_checkpoint",
    "load_model",
    "parse_spec",
    "predict_logits",
    "save_checkpoint",
    "semantic_to_mask_targets",
]
