"""Model zoo: ``create_model(spec, num_classes, weights)`` over a plain registry."""

from labelbridge.models.base import SegmentationModel, TinySegNet

__all__ = ["SegmentationModel", "TinySegNet"]
