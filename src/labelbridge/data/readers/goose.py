"""GOOSE 2D (German Outdoor and Offroad Dataset), id labels.

Layout (GOOSE documentation, "dataset structure"; goosetools)::

    images/{train,val,test}/<scenario>/<x>_windshield_vis.png
    labels/{train,val}/<scenario>/<x>_labelids.png       mode L, class ids
    (labels also hold <x>_color.png and <x>_instanceids.png, not read)

GOOSE-Ex uses ``_camera_left.png``, ``_front.png`` and ``_realsense.png`` image
suffixes; they are read too. The test split is read without labels (its labels are
not published).
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset

GOOSE_IMAGE_SUFFIXES = ("_windshield_vis.png", "_camera_left.png", "_front.png", "_realsense.png")


@register_dataset
class Goose(SegmentationDataset):
    name = "goose"
    taxonomy_name = "goose"
    splits = ("train", "val", "test")
    unlabelled_splits = ("test",)
    layout = "images/{split}/<scenario>/<x>_windshield_vis.png + labels/{split}/<scenario>/<x>_labelids.png"

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.root / "images" / self.split, "image")
        label_dir = (
            self.require_dir(self.root / "labels" / self.split, "label")
            if self.has_labels
            else None
        )
        return self.pairs_by_suffix(
            image_dir, label_dir, image_suffix=GOOSE_IMAGE_SUFFIXES, label_suffix="_labelids.png"
        )
