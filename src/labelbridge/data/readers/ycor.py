"""Yamaha-CMU Off-Road (YCOR).

Layout (as released; confirmed against the shared copy)::

    {train,valid}/iidNNNNNN/rgb.jpg
    {train,valid}/iidNNNNNN/labels.png     mode P; the palette index is the class id

Labels are read as palette indices (converting to RGB would give palette colours).
Real sizes: 931 train, 145 valid (the shared copy is halved to 512x272).
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class Ycor(SegmentationDataset):
    name = "ycor"
    taxonomy_name = "ycor"
    splits = ("train", "valid")
    layout = "{split}/iidNNNNNN/rgb.jpg + {split}/iidNNNNNN/labels.png (palette index = id)"

    def list_pairs(self) -> list[FilePair]:
        split_dir = self.require_dir(self.root / self.split, "split")
        pairs = []
        for image in sorted(split_dir.glob("*/rgb.jpg")):
            label = image.parent / "labels.png"
            if label.exists():
                pairs.append(FilePair(image, label))
            else:
                self.missing_label(image, label)
        return pairs
