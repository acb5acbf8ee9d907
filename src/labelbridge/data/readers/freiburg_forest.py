"""Freiburg Forest (DeepScene, Valada et al., ISER 2016), colour-coded ground truth.

Layout (``freiburg_forest_annotated.tar.gz``)::

    freiburg_forest_annotated/{train,test}/rgb/<name>_Clipped.jpg
    freiburg_forest_annotated/{train,test}/GT_color/<name>_mask.png     (or <name>_Clipped.png)
    (other modalities: depth_gray/, nir_gray/, evi_color/, ... not read)

Sources (facts only): UniBwTAS/data-priors ``DatasetClasses.py`` ``FreiburgForest``
(``download/freiburg_forest_annotated/<split>/rgb/*.jpg``, label path by replacing
``rgb`` and ``Clipped.jpg`` -> ``mask.png``) and ``prepare/prepare_freiburg_forest.py``
(reads ``train/GT_color/*.png`` as RGB, writes ``GT_id`` with 'Clipped' replaced by
'mask', i.e. some GT_color names carry ``_Clipped``); public loaders of the release:
``test/rgb/b1-09517_Clipped.jpg``, ``train/GT_color/b1-99445_mask.png``,
``test/GT_color/b1-09517_Clipped.png``, and one that opens ``GT_color/<name>_Clipped.png``
and falls back to ``GT_color/<name>_mask.png`` (both namings occur).

The root is ``freiburg_forest_annotated`` (the folder that holds ``train/`` and ``test/``;
a folder holding ``freiburg_forest_annotated/`` is accepted too). The label of
``rgb/<name>_Clipped.jpg`` is ``GT_color/<name>_mask.png``, else
``GT_color/<name>_Clipped.png``. Colours are decoded through the ``freiburg_forest``
taxonomy; a colour outside it is an error naming the file. Splits: ``train``, ``test``.
"""

from __future__ import annotations

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset

FREIBURG_FOLDER = "freiburg_forest_annotated"
IMAGE_TAG = "_Clipped"
#: Label name endings of ``GT_color`` files, in preference order.
LABEL_ENDINGS = ("_mask.png", "_Clipped.png")


@register_dataset
class FreiburgForest(SegmentationDataset):
    name = "freiburg_forest"
    taxonomy_name = "freiburg_forest"
    release_folder = FREIBURG_FOLDER
    splits = ("train", "test")
    layout = "{train,test}/rgb/<name>_Clipped.jpg + {split}/GT_color/<name>_mask.png (colour)"

    def list_pairs(self) -> list[FilePair]:
        split_dir = self.release_dir / self.split
        image_dir = self.require_dir(split_dir / "rgb", "image")
        label_dir = self.require_dir(split_dir / "GT_color", "label")
        pairs = []
        for image in sorted(image_dir.glob("*.jpg")):
            base = image.stem
            if base.endswith(IMAGE_TAG):
                base = base[: -len(IMAGE_TAG)]
            candidates = [label_dir / f"{base}{end}" for end in LABEL_ENDINGS]
            label = next((c for c in candidates if c.exists()), None)
            if label is None:
                self.missing_label(image, candidates[0])
                continue
            pairs.append(FilePair(image, label))
        return pairs
