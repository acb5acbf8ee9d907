"""Cityscapes, fine annotations, label ids.

Layout (cityscapesScripts naming)::

    leftImg8bit/{train,val,test}/<city>/<x>_leftImg8bit.png
    gtFine/{train,val}/<city>/<x>_gtFine_labelIds.png     mode L, label ids 0..33

The test split's ``gtFine`` files are placeholders without real labels, so ``test``
is treated as unlabelled.
"""

from __future__ import annotations

from typing import ClassVar

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset


class CityscapesStyleDataset(SegmentationDataset):
    """Base of layouts ``leftImg8bit/<split>/<group>/<x><image_suffix>`` +
    ``gtFine/<split>/<group>/<x><label_suffix>`` (Cityscapes, IDD, IDD-Lite).

    Subclasses set ``image_suffix`` (one suffix or a tuple) and ``label_suffix``.
    """

    image_suffix: ClassVar[str | tuple[str, ...]] = "_leftImg8bit.png"
    label_suffix: ClassVar[str] = "_gtFine_labelIds.png"

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.root / "leftImg8bit" / self.split, "image")
        label_dir = (
            self.require_dir(self.root / "gtFine" / self.split, "label")
            if self.has_labels
            else None
        )
        return self.pairs_by_suffix(
            image_dir, label_dir, image_suffix=self.image_suffix, label_suffix=self.label_suffix
        )


@register_dataset
class Cityscapes(CityscapesStyleDataset):
    name = "cityscapes"
    taxonomy_name = "cityscapes"
    splits = ("train", "val", "test")
    unlabelled_splits = ("test",)
    layout = "leftImg8bit/{split}/<city>/<x>_leftImg8bit.png + gtFine/{split}/<city>/<x>_gtFine_labelIds.png"
