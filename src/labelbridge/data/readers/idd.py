"""IDD segmentation (``idd20k`` / IDD part I+II), level-3 ids.

Layout: images as released, labels as written by the AutoNUE/IDD toolkit's
``preperation/createLabels.py --id-type level3Ids`` (the release itself ships polygon
JSON; naming confirmed from public code using the toolkit)::

    leftImg8bit/{train,val,test}/<seq>/<id>_leftImg8bit.png
    gtFine/{train,val}/<seq>/<id>_gtFine_labellevel3Ids.png    mode L, level-3 ids, 255 ignore

The test split has no labels. Images named ``<id>_leftImg8bit.jpg`` (as some IDD
packages store them) are read too; the exact image extension could not be confirmed
for every IDD release.
"""

from __future__ import annotations

from labelbridge.data.readers.cityscapes import CityscapesStyleDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class Idd(CityscapesStyleDataset):
    name = "idd"
    taxonomy_name = "idd_level3"
    splits = ("train", "val", "test")
    unlabelled_splits = ("test",)
    layout = "leftImg8bit/{split}/<seq>/<id>_leftImg8bit.png + gtFine/{split}/<seq>/<id>_gtFine_labellevel3Ids.png"
    image_suffix = ("_leftImg8bit.png", "_leftImg8bit.jpg")
    label_suffix = "_gtFine_labellevel3Ids.png"
