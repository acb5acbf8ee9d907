"""KITTI semantic segmentation benchmark (``data_semantics.zip``), Cityscapes label ids.

Layout (KITTI devkit_semantics README; the zip unpacks to ``training/`` and
``testing/``)::

    training/image_2/<name>.png
    training/semantic/<name>.png      mode L, Cityscapes label ids (taxonomy kitti)
    testing/image_2/<name>.png        no labels

Split names are the folder names: ``training`` (200 images), ``testing`` (200).
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class Kitti(SegmentationDataset):
    name = "kitti"
    taxonomy_name = "kitti"
    splits = ("training", "testing")
    unlabelled_splits = ("testing",)
    layout = "{split}/image_2/<name>.png + training/semantic/<name>.png"

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.root / self.split / "image_2", "image")
        label_dir = (
            self.require_dir(self.root / self.split / "semantic", "label")
            if self.has_labels
            else None
        )
        return self.pairs_by_suffix(
            image_dir, label_dir, image_suffix=".png", label_suffix=".png", recursive=False
        )
