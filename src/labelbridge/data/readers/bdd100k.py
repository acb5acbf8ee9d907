"""BDD100K semantic segmentation (the 10k-image subset), 19 Cityscapes train ids.

Layout (BDD100K docs; mmsegmentation's BDD100K preparation guide)::

    images/10k/{train,val,test}/<name>.jpg
    labels/sem_seg/masks/{train,val}/<name>.png    mode L, ids 0..18, 255 ignore

The ``test`` split has no labels. Real sizes: 7000 train, 1000 val, 2000 test.
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class Bdd100k(SegmentationDataset):
    name = "bdd100k"
    taxonomy_name = "bdd100k"
    splits = ("train", "val", "test")
    unlabelled_splits = ("test",)
    layout = "images/10k/{split}/<name>.jpg + labels/sem_seg/masks/{split}/<name>.png"

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.root / "images" / "10k" / self.split, "image")
        label_dir = None
        if self.has_labels:
            label_dir = self.require_dir(
                self.root / "labels" / "sem_seg" / "masks" / self.split, "label"
            )
        return self.pairs_by_suffix(
            image_dir, label_dir, image_suffix=".jpg", label_suffix=".png", recursive=False
        )
