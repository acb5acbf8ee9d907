"""Dataset readers (one module per published layout), samples and sampling."""

from labelbridge.data import readers  # noqa: F401  (registers the readers)
from labelbridge.data.base import FilePair, Sample, SegmentationDataset, SkipRecord
from labelbridge.data.registry import DATASETS, create_dataset, register_dataset

__all__ = [
    "DATASETS",
    "FilePair",
    "Sample",
    "SegmentationDataset",
    "SkipRecord",
    "create_dataset",
    "register_dataset",
]
