"""Training: the LightningModule, augmentation on device, optimisers and schedules,
callbacks, and the training entry points (teacher / student with source fine-tune)."""

from labelbridge.engine.augment import SegmentationAugment
from labelbridge.engine.module import SELECT_METRIC, SegmentationModule, val_set_spec
from labelbridge.engine.train import TrainResult, run_training, validate_checkpoint

__all__ = [
    "SELECT_METRIC",
    "SegmentationAugment",
    "SegmentationModule",
    "TrainResult",
    "run_training",
    "validate_checkpoint",
    "val_set_spec",
]
