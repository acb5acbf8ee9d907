"""COCO panoptic 2017 (133 categories), read as semantic maps of COCO category ids.

Published layout (cocodataset/panopticapi README; detectron2 ``datasets/README.md``
"Expected dataset structure for PanopticFPN"; ``panoptic_annotations_trainval2017.zip``
holds ``annotations/panoptic_{train,val}2017.json`` and the zipped PNG folders
``annotations/panoptic_{train,val}2017.zip``, which users unzip either inside
``annotations/`` or, as detectron2 expects, in the root; both are read)::

    {train,val}2017/<12-digit image id>.jpg          e.g. val2017/000000000139.jpg
    annotations/panoptic_{train,val}2017.json        images[{id, file_name, width, height}],
                                                     annotations[{image_id, file_name,
                                                     segments_info[{id, category_id, iscrowd,
                                                     bbox, area}]}], categories[{id, name,
                                                     supercategory, isthing, color}]
    annotations/panoptic_{train,val}2017/<id>.png    RGB, segment id = R + 256 G + 256^2 B
      (or panoptic_{train,val}2017/<id>.png)

Labels are decoded on the fly (:mod:`._panoptic`): each pixel gets its segment's
``category_id`` (crowd segments included, as detectron2's panoptic-to-semantic
conversion does), VOID (segment 0) gets 0 = ``unlabeled`` of taxonomy ``coco_panoptic``.
A segment id of a PNG missing from its ``segments_info`` is an error naming the PNG.
The JSON of the split is loaded once when listing.

``labelbridge datasets prepare coco_panoptic`` (optional: it only makes reading faster)
writes ``panoptic_semseg_{train,val}2017/<id>.png`` (mode L, the same raw category ids,
0 unlabelled) into the output folder, the folder name used by the paper's reference
(UniBwTAS/data-priors ``DatasetClasses.py`` class ``COCO``) and by Mask2Former's
``prepare_coco_semantic_annos_from_panoptic_annos.py``. Note: *their* files hold
contiguous ids 0..132 with 255 unlabelled, not category ids, so a published root's own
``panoptic_semseg_*`` folder is never read here (it would give wrong classes); only a
folder written by ``datasets prepare`` (it has ``prepared.json``) is read as semantic
PNGs, with images from its source root.

Splits ``train`` and ``val`` are the 2017 sets; ``train_urban`` / ``val_urban`` are the
reference's urban subsets (5449 / 262 images): 12-digit image ids, one per line, in
``<root>/lists/{train,val}_urban_subset.txt`` (the reference keeps them in
``datasets/coco/lists/``, i.e. in the dataset root). Copy those files there.
"""

from __future__ import annotations

import logging
from pathlib import Path

from labelbridge.data.base import (
    MISSING_FILE,
    FilePair,
    SampleError,
    SegmentationDataset,
    SkipRecord,
)
from labelbridge.data.prepare import Preparer, PrepareTask, register_preparer
from labelbridge.data.readers._panoptic import (
    PanopticLabels,
    decode_panoptic_png,
    load_panoptic_json,
    semantic_png_bytes,
)
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError, SplitAbsent

logger = logging.getLogger(__name__)

#: Urban subset split -> the 2017 split it selects from.
URBAN_SPLITS = {"train_urban": "train", "val_urban": "val"}
#: Raw id of VOID pixels (``unlabeled`` of taxonomy ``coco_panoptic``).
VOID_ID = 0


def base_split(split: str) -> str:
    """``train`` / ``val`` for a split name (urban subsets select from these)."""
    return URBAN_SPLITS.get(split, split)


def urban_list_file(root: Path, split: str) -> Path:
    """``<root>/lists/{train,val}_urban_subset.txt``."""
    return root / "lists" / f"{base_split(split)}_urban_subset.txt"


def read_urban_ids(roots: list[Path], split: str) -> tuple[Path, list[str]]:
    """The list file of an urban subset (first of ``roots`` that has it) and its ids.

    Raises:
        DatasetError: no root has the list file, or it holds a line that is no
            12-digit image id.
    """
    for root in roots:
        path = urban_list_file(root, split)
        if path.is_file():
            break
    else:
        raise SplitAbsent(
            f"{urban_list_file(roots[0], split)}: list of COCO split {split!r} not found; copy "
            f"the reference's datasets/coco/lists/{base_split(split)}_urban_subset.txt "
            "(UniBwTAS/data-priors; 12-digit image ids, one per line) to <root>/lists/"
        )
    try:
        lines = path.read_text().split()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read list file: {exc}") from None
    bad = [s for s in lines if not (len(s) == 12 and s.isdigit())]
    if bad:
        raise DatasetError(f"{path}: lines {bad[:5]} are not 12-digit COCO image ids")
    return path, sorted(set(lines))


def panoptic_paths(root: Path, split: str) -> tuple[Path, Path]:
    """The split's panoptic JSON and PNG folder (``annotations/panoptic_<s>2017/``, else
    detectron2's ``panoptic_<s>2017/``)."""
    base = base_split(split)
    json_path = root / "annotations" / f"panoptic_{base}2017.json"
    png_dir = root / "annotations" / f"panoptic_{base}2017"
    if not png_dir.is_dir() and (root / f"panoptic_{base}2017").is_dir():
        png_dir = root / f"panoptic_{base}2017"
    return json_path, png_dir


@register_dataset
class CocoPanoptic(PanopticLabels, SegmentationDataset):
    name = "coco_panoptic"
    taxonomy_name = "coco_panoptic"
    splits = ("train", "val", "train_urban", "val_urban")
    layout = (
        "{train,val}2017/<id>.jpg + annotations/panoptic_{train,val}2017.json + "
        "annotations/panoptic_{train,val}2017/<id>.png (prepared: panoptic_semseg_{split}2017/<id>.png)"
    )

    def _images(self, image_dir: Path) -> list[Path]:
        """Images of the split: all ``*.jpg`` of the folder, or the urban subset's."""
        if self.split not in URBAN_SPLITS:
            return sorted(p for p in image_dir.iterdir() if p.name.endswith(".jpg"))
        list_file, ids = read_urban_ids([self.root, self.source_root], self.split)
        images = []
        for ident in ids:
            img = image_dir / f"{ident}.jpg"
            if img.exists():
                images.append(img)
                continue
            err = SampleError(img, MISSING_FILE, f"image listed in {list_file} not found")
            if self.on_error == "raise":
                raise err
            self.skipped.append(SkipRecord(str(img), str(err), MISSING_FILE))
        return images

    def list_pairs(self) -> list[FilePair]:
        base = base_split(self.split)
        image_dir = self.require_dir(self.source_root / f"{base}2017", "image")
        if self.prepared:
            label_dir = self.require_dir(
                self.root / f"panoptic_semseg_{base}2017",
                f"prepared label (run labelbridge datasets prepare coco_panoptic --split {base})",
            )
            labels = {img: label_dir / f"{img.stem}.png" for img in self._images(image_dir)}
        else:
            json_path, png_dir = panoptic_paths(self.root, self.split)
            if not json_path.is_file():
                raise DatasetError(
                    f"{json_path}: panoptic JSON of {self.name!r} split {self.split!r} not "
                    f"found (from panoptic_annotations_trainval2017.zip); expected layout: "
                    f"{self.layout}"
                )
            self.require_dir(png_dir, f"panoptic PNG (unzip annotations/panoptic_{base}2017.zip)")
            labels = self.panoptic_labels(self._images(image_dir), json_path, png_dir)
        return self.pairs_of(labels.items())


@register_preparer
class CocoPanopticPreparer(Preparer):
    """Panoptic PNG + JSON -> ``panoptic_semseg_{train,val}2017/<id>.png`` (mode L,
    COCO category ids). Urban splits prepare only their listed images."""

    name = "coco_panoptic"
    splits = ("train", "val", "train_urban", "val_urban")
    required = False
    holds_images = False

    def tasks(self, split: str) -> list[PrepareTask]:
        base = base_split(split)
        json_path, png_dir = panoptic_paths(self.root, split)
        if not png_dir.is_dir():
            raise DatasetError(
                f"{png_dir}: panoptic PNG folder of coco_panoptic split {split!r} not found "
                f"(unzip annotations/panoptic_{base}2017.zip)"
            )
        table = load_panoptic_json(json_path)
        wanted = None
        if split in URBAN_SPLITS:
            wanted = set(read_urban_ids([self.root], split)[1])
        tasks = []
        for image_name, png in sorted(table.png_by_image.items()):
            stem = Path(image_name).stem
            if wanted is not None and stem not in wanted:
                continue
            tasks.append(
                PrepareTask(
                    key=stem,
                    outputs=(f"panoptic_semseg_{base}2017/{stem}.png",),
                    source=(str(png_dir / png), table.by_png[png], str(json_path)),
                )
            )
        return tasks

    def convert(self, task: PrepareTask) -> dict[str, bytes]:
        png, segments, json_path = task.source
        semantic = decode_panoptic_png(Path(png), segments, void_id=VOID_ID, table=json_path)
        return {task.outputs[0]: semantic_png_bytes(semantic, Path(png))}
