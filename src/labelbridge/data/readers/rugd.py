"""RUGD (Robot Unstructured Ground Driving), colour-coded labels.

Layout (as released in ``RUGD_frames-with-annotations.zip`` and
``RUGD_annotations.zip``)::

    RUGD_frames-with-annotations/<seq>/<seq>_<n>.png     RGB frames
    RUGD_annotations/<seq>/<seq>_<n>.png                 RGB, one colour per class

Labels are decoded through the ``rugd`` taxonomy's palette (``label_format: color``);
a colour outside it is an error naming the file.

Splits are sequence lists. The defaults follow the split of the RUGD paper (Wigness
et al., IROS 2019), as reproduced by public code using it; this could not be checked
against the paper itself:

* train: park-2, trail, trail-3, trail-4, trail-6, trail-9, trail-10, trail-11,
  trail-12, trail-14, trail-15, village
* val: park-8, trail-5
* test: creek, park-1, trail-7, trail-13

``all`` lists every sequence folder present. Pass ``sequences=[...]`` to use another
split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError

RUGD_SPLIT_SEQUENCES: dict[str, tuple[str, ...]] = {
    "train": (
        "park-2",
        "trail",
        "trail-3",
        "trail-4",
        "trail-6",
        "trail-9",
        "trail-10",
        "trail-11",
        "trail-12",
        "trail-14",
        "trail-15",
        "village",
    ),
    "val": ("park-8", "trail-5"),
    "test": ("creek", "park-1", "trail-7", "trail-13"),
}


@register_dataset
class Rugd(SegmentationDataset):
    """RUGD reader.

    Args:
        root, split, **kwargs: see :class:`SegmentationDataset`.
        sequences: sequence folder names to read instead of the split's default list.
    """

    name = "rugd"
    taxonomy_name = "rugd"
    splits = ("train", "val", "test", "all")
    layout = "RUGD_frames-with-annotations/<seq>/<seq>_<n>.png + RUGD_annotations/<seq>/<seq>_<n>.png (colour)"

    def __init__(
        self,
        root: str | Path | None,
        split: str,
        *,
        sequences: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.sequences = list(sequences) if sequences is not None else None
        super().__init__(root, split, **kwargs)

    def list_pairs(self) -> list[FilePair]:
        image_root = self.require_dir(self.root / "RUGD_frames-with-annotations", "image")
        label_root = self.require_dir(self.root / "RUGD_annotations", "label")
        if self.sequences is not None:
            sequences = self.sequences
        elif self.split == "all":
            sequences = sorted(p.name for p in image_root.iterdir() if p.is_dir())
        else:
            sequences = list(RUGD_SPLIT_SEQUENCES[self.split])
        pairs: list[FilePair] = []
        for seq in sequences:
            seq_dir = image_root / seq
            if not seq_dir.is_dir():
                raise DatasetError(
                    f"{seq_dir}: RUGD sequence {seq!r} of split {self.split!r} not found"
                )
            pairs += self.pairs_by_suffix(
                seq_dir, label_root / seq, image_suffix=".png", label_suffix=".png", recursive=False
            )
        return sorted(pairs, key=lambda p: p.image)
