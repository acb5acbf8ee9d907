"""CamVid, SegNet 11-class release.

Layout (SegNet tutorial release; confirmed against the shared copy)::

    {train,val,test}/<name>.<ext>        RGB images (png in the release, any extension)
    {train,val,test}annot/<name>.png     mode L, one class id per pixel (taxonomy camvid11)

Image and label are paired by file stem, whatever the image extension. Real sizes:
367 train, 101 val, 233 test, 480x360.
"""

from __future__ import annotations

from labelbridge.data.base import IMAGE_EXTENSIONS, FilePair, SegmentationDataset, pair_by_stem
from labelbridge.data.registry import register_dataset


@register_dataset
class CamVid(SegmentationDataset):
    name = "camvid"
    taxonomy_name = "camvid11"
    splits = ("train", "val", "test")
    layout = "{split}/<name>.<ext> + {split}annot/<name>.png"

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.root / self.split, "image")
        label_dir = self.require_dir(self.root / f"{self.split}annot", "label")
        images = [p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        labels = list(label_dir.glob("*.png"))
        return pair_by_stem(images, labels, label_dir=label_dir, on_missing=self.missing_label)
