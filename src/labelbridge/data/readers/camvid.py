"""CamVid, SegNet 11-class layout: ``{split}/<name>.<ext>`` and ``{split}annot/<name>.png``."""

from __future__ import annotations

from labelbridge.data.base import IMAGE_EXTENSIONS, FilePair, SegmentationDataset, pair_by_stem
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError


@register_dataset
class CamVid(SegmentationDataset):
    name = "camvid"
    taxonomy_name = "camvid11"
    splits = ("train", "val", "test")

    def list_pairs(self) -> list[FilePair]:
        image_dir, label_dir = self.root / self.split, self.root / f"{self.split}annot"
        if not image_dir.is_dir():
            raise DatasetError(f"{image_dir}: CamVid image folder not found")
        images = [p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        labels = list(label_dir.glob("*.png")) if label_dir.is_dir() else []
        return pair_by_stem(images, labels, label_dir=label_dir)
