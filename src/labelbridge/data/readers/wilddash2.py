"""WildDash 2 public set (``wd_public_v2p0.zip``), semantic labels of WildDash 2 ids.

The public release is ``wd_public_v2p0.zip`` (downloaded by the author's
ozendelait/wilddash_scripts ``download_helper/download_wilddash2.sh``, with
``wd_both_02.zip``, the benchmark images without labels; the paper's reference
UniBwTAS/data-priors reads ``wd_public_v2p0/images``). It holds ``images/<name>.jpg``
and COCO panoptic ground truth: ``panoptic.json`` (``images``, ``annotations`` with
``segments_info``, ``categories`` with ``isthing``) and ``panoptic/<name>.png`` (the PNG
folder named like the JSON, as ``pano2sem.py`` assumes by default). Category ids are the
WildDash 2 ids 0..80 (taxonomy ``wilddash2``). Layouts read, in this order::

    images/<name>.jpg + labels/<name>_labelIds.png    mode L, WD2 ids (semantic PNGs)
    images/<name>.jpg + panoptic.json + panoptic/<name>.png   decoded on the fly

The semantic PNGs are what the WildDash scripts' ``pano2sem.py`` writes
(``--outp_dir_sem``; it names them after the image, ``.jpg`` -> ``_labelIds.png``)::

    python pano2sem.py --json_path wd_public_v2p0/panoptic.json --outp_dir_sem wd_public_v2p0/labels

or ``labelbridge datasets prepare wilddash2`` (optional; writes the same names into
``labels/`` of the output folder; images stay in the source root). Decoding
(:mod:`._panoptic`, segment id = ``R + 256 G + 256^2 B`` as ``pano2sem.py``'s BGR
decoding): each pixel gets its segment's ``category_id``, crowd segments included,
VOID (segment 0) gets 0 = ``unlabeled``; unlike ``pano2sem.py``, which leaves them 0, a
segment id missing from ``segments_info`` is an error naming the PNG. Whether the
release's image ids are strings or integers could not be confirmed without the files;
images are matched to annotations through ``images[].id`` either way.

The single split is ``public`` (4256 images); the benchmark set has no public labels
and is not listed.
"""

from __future__ import annotations

from pathlib import Path

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.prepare import Preparer, PrepareTask, register_preparer
from labelbridge.data.readers._panoptic import (
    PanopticLabels,
    decode_panoptic_png,
    load_panoptic_json,
    semantic_png_bytes,
)
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError

#: Raw id of VOID pixels (``unlabeled`` of taxonomy ``wilddash2``; pano2sem.py's fill).
VOID_ID = 0
PANOPTIC_JSON = "panoptic.json"
PANOPTIC_DIR = "panoptic"
LABEL_DIR = "labels"
LABEL_SUFFIX = "_labelIds.png"


def semantic_name(image_name: str) -> str:
    """pano2sem.py's name of the semantic PNG of image ``<name>.jpg``."""
    return image_name.replace(".jpg", LABEL_SUFFIX)


@register_dataset
class WildDash2(PanopticLabels, SegmentationDataset):
    name = "wilddash2"
    taxonomy_name = "wilddash2"
    splits = ("public",)
    layout = (
        "images/<name>.jpg + labels/<name>_labelIds.png (pano2sem.py / datasets prepare), "
        "else panoptic.json + panoptic/<name>.png"
    )

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.source_root / "images", "image")
        label_dir = self.root / LABEL_DIR
        if self.prepared or label_dir.is_dir():
            self.require_dir(
                label_dir, "label (run labelbridge datasets prepare wilddash2, or pano2sem.py)"
            )
            return self.pairs_by_suffix(
                image_dir, label_dir, image_suffix=".jpg", label_suffix=LABEL_SUFFIX,
                recursive=False,
            )  # fmt: skip
        json_path = self.root / PANOPTIC_JSON
        png_dir = self.root / PANOPTIC_DIR
        if not json_path.is_file():
            raise DatasetError(
                f"{self.root}: neither {LABEL_DIR}/ (semantic PNGs) nor {PANOPTIC_JSON} "
                f"(panoptic ground truth) found; expected layout: {self.layout}"
            )
        self.require_dir(png_dir, "panoptic PNG")
        images = sorted(p for p in image_dir.iterdir() if p.name.endswith(".jpg"))
        return self.pairs_of(self.panoptic_labels(images, json_path, png_dir).items())


@register_preparer
class WildDash2Preparer(Preparer):
    """``panoptic.json`` + ``panoptic/<name>.png`` -> ``labels/<name>_labelIds.png``
    (mode L, WildDash 2 ids; the names pano2sem.py writes)."""

    name = "wilddash2"
    splits = ("public",)
    required = False
    holds_images = False

    def tasks(self, split: str) -> list[PrepareTask]:
        json_path = self.root / PANOPTIC_JSON
        png_dir = self.root / PANOPTIC_DIR
        if not png_dir.is_dir():
            raise DatasetError(f"{png_dir}: panoptic PNG folder of wilddash2 not found")
        table = load_panoptic_json(json_path)
        return [
            PrepareTask(
                key=Path(image_name).stem,
                outputs=(f"{LABEL_DIR}/{semantic_name(image_name)}",),
                source=(str(png_dir / png), table.by_png[png], str(json_path)),
            )
            for image_name, png in sorted(table.png_by_image.items())
        ]

    def convert(self, task: PrepareTask) -> dict[str, bytes]:
        png, segments, json_path = task.source
        semantic = decode_panoptic_png(Path(png), segments, void_id=VOID_ID, table=json_path)
        return {task.outputs[0]: semantic_png_bytes(semantic, Path(png))}
