"""IDD-Lite (``idd20k_lite``), IDD level-1 classes.

Layout (as released; confirmed against the shared copy)::

    leftImg8bit/{train,val,test}/<seq>/<id>_image.jpg
    gtFine/{train,val}/<seq>/<id>_label.png        mode L, level-1 ids 0..6, 255 ignore

The test split is published without labels. Real sizes: 1403 train, 204 val, 404 test
images, 320x227.
"""

from __future__ import annotations

from labelbridge.data.readers.cityscapes import CityscapesStyleDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class IddLite(CityscapesStyleDataset):
    name = "idd_lite"
    taxonomy_name = "idd_level1"
    splits = ("train", "val", "test")
    unlabelled_splits = ("test",)
    layout = "leftImg8bit/{split}/<seq>/<id>_image.jpg + gtFine/{split}/<seq>/<id>_label.png"
    image_suffix = "_image.jpg"
    label_suffix = "_label.png"
