"""RELLIS-3D images with id labels.

Layout (RELLIS-3D README "Folder structure" and the benchmark code's split files)::

    <seq>/pylon_camera_node/frameNNNNNN-<stamp>.jpg
    <seq>/pylon_camera_node_label_id/frameNNNNNN-<stamp>.png    mode L, ids 0..34
    {train,val,test}.lst      lines "<image path> <label path>", relative to the root

The split files come from the "Image Split File" download and lie in the root. A line
with only an image path lists an unlabelled image. Real sizes: 3302 train, 983 val,
1672 test. Pairs keep the order of the split file.
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset


@register_dataset
class Rellis3d(SegmentationDataset):
    name = "rellis3d"
    taxonomy_name = "rellis3d"
    splits = ("train", "val", "test")
    layout = "{split}.lst lines '<seq>/pylon_camera_node/<f>.jpg <seq>/pylon_camera_node_label_id/<f>.png'"

    def list_pairs(self) -> list[FilePair]:
        return self.pairs_from_list_file(
            self.root / f"{self.split}.lst",
            what="RELLIS-3D split file",
            hint="download the image split file into the dataset root",
        )
