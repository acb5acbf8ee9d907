"""WildDash 2 public set (``wd_public_02``), semantic id labels.

The release holds ``images/<name>.jpg`` and COCO panoptic ground truth
(``panoptic.json`` + ``panoptic/<name>.png``). Semantic uint8 label PNGs are made from
it with the WildDash scripts' ``pano2sem.py``, which names them
``<name>_labelIds.png``. This reader assumes they were written to ``labels/``::

    python pano2sem.py --json_path wd_public_02/panoptic.json --outp_dir_sem wd_public_02/labels

Layout read::

    images/<name>.jpg
    labels/<name>_labelIds.png      mode L, WildDash 2 category ids (taxonomy wilddash2)

The panoptic PNGs are not decoded here. The single split is called ``public``
(4256 images); the benchmark set has no public labels and is not listed.
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class WildDash2(SegmentationDataset):
    name = "wilddash2"
    taxonomy_name = "wilddash2"
    splits = ("public",)
    layout = "images/<name>.jpg + labels/<name>_labelIds.png (from pano2sem.py)"

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.root / "images", "image")
        label_dir = self.require_dir(
            self.root / "labels", "label (run pano2sem.py --outp_dir_sem labels)"
        )
        return self.pairs_by_suffix(
            image_dir, label_dir, image_suffix=".jpg", label_suffix="_labelIds.png", recursive=False
        )
