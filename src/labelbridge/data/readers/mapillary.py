"""Mapillary Vistas, v1.2 labels (66 classes).

Layouts (Vistas README; mmsegmentation's Mapillary preparation guide)::

    {training,validation}/images/<id>.jpg
    {training,validation}/labels/<id>.png          v1.x release: mode P, index = class id
    {training,validation}/v1.2/labels/<id>.png     v2.0 release, which ships both versions

When ``<split>/v1.2/labels`` exists it is used (the v2.0 release's top-level labels
are not present there); otherwise ``<split>/labels``. The ``testing`` split has no
labels. Real sizes: 18000 training, 2000 validation, 5000 testing.
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class MapillaryVistas(SegmentationDataset):
    name = "mapillary"
    taxonomy_name = "mapillary_vistas_v1_2"
    splits = ("training", "validation", "testing")
    unlabelled_splits = ("testing",)
    layout = "{split}/images/<id>.jpg + {split}/labels/<id>.png (or {split}/v1.2/labels/<id>.png)"

    def list_pairs(self) -> list[FilePair]:
        split_dir = self.root / self.split
        image_dir = self.require_dir(split_dir / "images", "image")
        label_dir = None
        if self.has_labels:
            versioned = split_dir / "v1.2" / "labels"
            label_dir = (
                versioned if versioned.is_dir() else self.require_dir(split_dir / "labels", "label")
            )
        return self.pairs_by_suffix(
            image_dir, label_dir, image_suffix=".jpg", label_suffix=".png", recursive=False
        )
