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
from labelbridge.errors import DatasetError


@register_dataset
class Rellis3d(SegmentationDataset):
    name = "rellis3d"
    taxonomy_name = "rellis3d"
    splits = ("train", "val", "test")
    layout = "{split}.lst lines '<seq>/pylon_camera_node/<f>.jpg <seq>/pylon_camera_node_label_id/<f>.png'"

    def list_pairs(self) -> list[FilePair]:
        list_file = self.root / f"{self.split}.lst"
        if not list_file.is_file():
            raise DatasetError(
                f"{list_file}: RELLIS-3D split file not found (download the image split file "
                f"into the dataset root; expected layout: {self.layout})"
            )
        pairs = []
        for lineno, line in enumerate(list_file.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) > 2:
                raise DatasetError(
                    f"{list_file}:{lineno}: expected '<image path> [<label path>]', got {len(fields)} fields"
                )
            image = self.root / fields[0].lstrip("/")
            if len(fields) == 1:
                pairs.append(FilePair(image, None))
                continue
            label = self.root / fields[1].lstrip("/")
            if label.exists():
                pairs.append(FilePair(image, label))
            else:
                self.missing_label(image, label)
        return pairs
