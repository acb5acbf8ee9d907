"""TAS500 v1.1 (Metzger et al., IV 2021), label-id PNGs (taxonomy ``tas500``).

Layout (the ``tas500v1.1`` folder of the release)::

    tas500v1.1/{train,val,test}/<name>.png        RGB images
    tas500v1.1/{train,val}_labels_ids/<name>.png  mode L, ids 0..22 and 255 (undefined)
    tas500v1.1/{train,val}_labels/<name>.png      colour pictures of the labels (not read)

Sources (facts only): UniBwTAS/data-priors ``DatasetClasses.py`` ``TAS500`` reads
``<root>/<split>/*.png`` with ``<root>/<split>_labels_ids/*.png``; a public TAS500 loader
documents the release tree ``tas500v1.1/{train, train_labels, train_labels_ids, val,
val_labels, val_labels_ids, test}``, pairs an image with the file of the same name in
``<split>_labels_ids``, reads the test split without labels, treats 255 as ignore and 23
classes as 0..22; another public loader gives the sizes train 440, val 100, test 100.

The root is the ``tas500v1.1`` folder (a folder holding ``tas500v1.1/`` is accepted too).
Labels pair with images by file name. ``test`` is published without labels.
Not confirmed: the image file names (the fixtures use an arbitrary stem).
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset

TAS500_FOLDER = "tas500v1.1"


@register_dataset
class Tas500(SegmentationDataset):
    name = "tas500"
    taxonomy_name = "tas500"
    release_folder = TAS500_FOLDER
    splits = ("train", "val", "test")
    unlabelled_splits = ("test",)
    layout = "tas500v1.1/{split}/<name>.png + tas500v1.1/{train,val}_labels_ids/<name>.png"

    def list_pairs(self) -> list[FilePair]:
        base = self.release_dir
        image_dir = self.require_dir(base / self.split, "image")
        label_dir = (
            self.require_dir(base / f"{self.split}_labels_ids", "label")
            if self.has_labels
            else None
        )
        return self.pairs_by_suffix(
            image_dir, label_dir, image_suffix=".png", label_suffix=".png", recursive=False
        )
