"""Generic folder layout (written by the demo generator; for any dataset).

Layout::

    images/<split>/**/<name>.<ext>      any image extension
    labels/<split>/**/<name>.png        same sub-folder and name
    taxonomy.yaml                       the label taxonomy (unless ``taxonomy=`` is given)

The labels are id PNGs (mode L, P or I;16), or, when the taxonomy says
``label_format: color``, RGB images in the taxonomy's class colours (the colour-coded
variant, as many small datasets ship; an RGB file under an id taxonomy is refused).
Any folder under ``images/`` is a split. A split without a ``labels/<split>`` folder is
unlabelled (its samples have ``label=None``); a split that has the folder needs a
label for every image.
"""

from __future__ import annotations

from pathlib import Path

from labelbridge.data.base import (
    IMAGE_EXTENSIONS,
    FilePair,
    SegmentationDataset,
    resolve_root,
    walk_files,
)
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError

FOLDER_TAXONOMY_FILE = "taxonomy.yaml"


class RootTaxonomy(SegmentationDataset):
    """A generic layout whose taxonomy is the root's ``taxonomy.yaml`` (or ``taxonomy=``)."""

    taxonomy_name = ""

    def default_taxonomy(self) -> str | Path:
        path = self.root / FOLDER_TAXONOMY_FILE
        if not path.is_file():
            raise DatasetError(
                f"{path}: no taxonomy file for the {self.name} dataset; write one or pass "
                "taxonomy=NAME_OR_PATH"
            )
        return path


@register_dataset
class ImageFolder(RootTaxonomy):
    name = "folder"
    splits = ()
    layout = (
        "images/<split>/**/<name>.<ext> + labels/<split>/**/<name>.png (ids, or colours "
        "with label_format: color) + taxonomy.yaml"
    )

    @classmethod
    def available_splits(cls, root: str | Path | None) -> tuple[str, ...]:
        images = resolve_root(root, cls.name) / "images"
        if not images.is_dir():
            raise DatasetError(
                f"{images}: image folder of the generic layout not found ({cls.layout})"
            )
        return tuple(sorted(p.name for p in images.iterdir() if p.is_dir()))

    @property
    def has_labels(self) -> bool:
        return (self.root / "labels" / self.split).is_dir()

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.root / "images" / self.split
        if not image_dir.is_dir():
            present = self.available_splits(self.root)
            raise DatasetError(
                f"{image_dir}: split {self.split!r} not found; splits present: {list(present)}"
            )
        label_dir = self.root / "labels" / self.split if self.has_labels else None
        images = [p for p in walk_files(image_dir) if p.suffix.lower() in IMAGE_EXTENSIONS]
        return self.pairs_of(
            (
                img,
                None
                if label_dir is None
                else label_dir / img.relative_to(image_dir).with_suffix(".png"),
            )
            for img in images
        )
