"""Training: the LightningModule, augmentation on device, optimisers and schedules,
callbacks, the data module, one resumable stage runner (``stage``) and the training
entry point (teacher / student with source fine-tune)."""

import warnings

from labelbridge.engine.augment import SegmentationAugment
from labelbridge.engine.module import SELECT_METRIC, SegmentationModule, val_set_spec
from labelbridge.engine.stage import validate_checkpoint
from labelbridge.engine.train import TrainResult, run_training

# Two warnings every run printed that ask nothing of a user: Lightning's pytree helper
# builds torch's deprecated ``LeafSpec`` (its own upgrade), and a resumed stage's
# checkpoint folder is not empty by design (it holds the state being resumed).
warnings.filterwarnings(
    "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
)
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


__all__ = [
    "SELECT_METRIC",
    "SegmentationAugment",
    "SegmentationModule",
    "TrainResult",
    "run_training",
    "validate_checkpoint",
    "val_set_spec",
]
