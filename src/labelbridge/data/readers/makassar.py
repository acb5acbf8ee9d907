"""Semantic Segmentation Makassar (IDN) Road, colour-coded masks (taxonomy ``makassar``).

Layout (the release folder, called ``road_lane_segmentation`` by the reference)::

    {train,val}/images/<name>.jpg
    {train,val}/masks/<name>.png     RGB: background (0,0,0), road (128,0,0),
                                     lm_solid (0,128,0), lm_dashed (128,128,0)

Sources (facts only): UniBwTAS/data-priors ``prepare/prepare_lanes.py`` (reads
``road_lane_segmentation/val/masks/*.png`` as RGB and maps the four colours above, in that
order, to ids 0..3, writing ``<name>_id.png`` next to each mask) and ``DatasetClasses.py``
``Lanes`` (``<split>/images/*.jpg``; label ``<split>/masks/<name>_id.png``, i.e. the
converted form of ``<split>/masks/<name>.png``).

This reader decodes the published colour masks directly (no prepare step) through the
``makassar`` taxonomy's colours; the reference's converted ``*_id.png`` files are not
read. A colour outside the four is an error naming the file (the reference's converter
silently gave such pixels id 0; pass ``unknown_as_ignore=True`` to map them to ignore).

Splits: ``train`` and ``val`` (used by the reference). ``test`` is read when a ``test/``
folder exists; whether the release has one is not confirmed.
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class Makassar(SegmentationDataset):
    name = "makassar"
    taxonomy_name = "makassar"
    splits = ("train", "val", "test")
    layout = "{split}/images/<name>.jpg + {split}/masks/<name>.png (colour)"

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.root / self.split / "images", "image")
        label_dir = self.require_dir(self.root / self.split / "masks", "mask")
        return self.pairs_by_suffix(
            image_dir,
            label_dir,
            image_suffix=(".jpg", ".jpeg"),
            label_suffix=".png",
            recursive=False,
        )
