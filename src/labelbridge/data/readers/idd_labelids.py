"""IDD segmentation (IDD part I, ``idd20kII``) at the level of its polygon label names.

Taxonomy ``idd_labelids``: the 40 label names of IDD's polygon annotations with the
``id`` column (0..39) of the AutoNUE toolkit's ``helpers/anue_labels.py``
(github.com/AutoNUE/public-code). This is the level the paper's reference
implementation uses (UniBwTAS/data-priors ``prepare/prepare_idd.py`` draws every
polygon label name into a label PNG); the reference numbers the names by first
appearance, which is not reproducible, so only the names carry over and the ids here
are the toolkit's.

Published layout (IDD segmentation release, Cityscapes-style; toolkit README)::

    leftImg8bit/{train,val,test}/<seq>/<frame>_leftImg8bit.png   (idd20kII: .jpg)
    gtFine/{train,val}/<seq>/<frame>_gtFine_polygons.json          Cityscapes polygon JSON

The toolkit's ``preperation/createLabels.py --id-type id`` draws every
``*_polygons.json`` into ``<frame>_gtFine_labelids.png`` next to it (its output name is
``fn.replace("_polygons.json", "_label{id_type}s.png")``; mode L). The reader pairs
each image with ``gtFine/<split>/<seq>/<frame>_gtFine_labelids.png`` when that file
exists (toolkit output, or a folder written by ``labelbridge datasets prepare
idd_labelids``), otherwise with ``<frame>_gtFine_polygons.json``, which it draws on the
fly. The test split has no labels. A prepared folder holds only labels
(``gtFine/<split>/<seq>/<frame>_gtFine_labelids.png``); the images are read from the
published root it was prepared from, and its labels only from the prepared folder.

Drawing rules (toolkit ``preperation/json2labelImg.py`` at AutoNUE/public-code HEAD
``5d9a93b``, last changed in ``9b38d12`` 2019-08-31; ``helpers/annotation.py``), confirmed
from the toolkit source:

- an ``L`` image of ``imgWidth`` x ``imgHeight`` filled with the ``unlabeled`` id (35);
- ``objects`` drawn in file order, later ones over earlier ones, with
  ``PIL.ImageDraw.polygon(points, fill=id)`` (no outline: ``json2labelImg`` passes
  none; PIL fills the boundary pixels too);
- objects whose ``deleted`` is truthy, and polygons of fewer than 3 points, are skipped;
- a label not among the names but ending in ``group`` is looked up without that suffix
  (``cargroup`` -> ``car``); ``polegroup`` is itself a label (id 27) and stays.

Deliberate differences from the toolkit: the toolkit prints ``Label '...' not known``
and skips such a polygon; this reader raises :class:`SampleError` ``UNKNOWN_LABEL``
naming the JSON and the name (the reference's label list shows IDD JSONs contain at
least one such name, ``ground``), or with ``unknown_as_ignore`` paints the polygon with
the ignore id instead of skipping it. The size written in the JSON must equal the
image's (else ``SIZE_MISMATCH``); malformed JSON is ``CORRUPT``.

Not confirmed without the real files: every key of IDD's JSON objects besides
``label``, ``polygon`` and ``deleted`` (the toolkit reads only those and ``imgHeight``,
``imgWidth``, ``objects``); whether coordinates are integers or floats (both are drawn
as PIL draws them); whether any name other than ``ground`` outside the 40 occurs. The
exact pixels on polygon edges follow the installed Pillow, as the toolkit's do.
"""

from __future__ import annotations

import json
import logging
import math
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from labelbridge.data.base import (
    CORRUPT,
    MISSING_FILE,
    UNKNOWN_LABEL,
    UNREADABLE,
    FilePair,
    SampleError,
    SegmentationDataset,
    walk_files,
)
from labelbridge.data.prepare import Preparer, PrepareTask, register_preparer
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError
from labelbridge.files import encode_label_png
from labelbridge.taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = ("_leftImg8bit.png", "_leftImg8bit.jpg")
#: Toolkit output of ``createLabels.py --id-type id`` (and of ``datasets prepare``).
LABELIDS_SUFFIX = "_gtFine_labelids.png"
POLYGONS_SUFFIX = "_gtFine_polygons.json"
#: Name of the background class (the toolkit fills with ``name2label['unlabeled'].id``).
BACKGROUND_NAME = "unlabeled"


def _read_json(path: Path) -> dict:
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        raise SampleError(path, MISSING_FILE, "label file not found") from None
    except IsADirectoryError:
        raise SampleError(path, UNREADABLE, "cannot read label file: it is a directory") from None
    except OSError as exc:
        if Path(path).is_dir():
            raise SampleError(
                path, UNREADABLE, "cannot read label file: it is a directory"
            ) from None
        raise SampleError(path, UNREADABLE, f"cannot read label file: {exc}") from None
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SampleError(
            path, CORRUPT, f"polygon JSON is malformed (truncated or corrupt?): {exc}"
        ) from None
    if not isinstance(data, dict):
        raise SampleError(path, CORRUPT, "polygon JSON is not an object")
    return data


def _size(path: Path, data: dict, key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SampleError(path, CORRUPT, f"polygon JSON has no valid {key!r}: {value!r}")
    try:
        n = int(value)
    except ValueError:
        raise SampleError(path, CORRUPT, f"polygon JSON has no valid {key!r}: {value!r}") from None
    if n <= 0:
        raise SampleError(path, CORRUPT, f"polygon JSON {key!r} must be positive, got {n}")
    return n


def _points(path: Path, index: int, raw: object) -> list[tuple[float, float]]:
    if not isinstance(raw, list):
        raise SampleError(path, CORRUPT, f"object {index}: 'polygon' is not a list of [x, y]")
    points = []
    for p in raw:
        if (
            not isinstance(p, (list, tuple))
            or len(p) < 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p[:2])
            or not all(math.isfinite(v) for v in p[:2])
        ):
            raise SampleError(path, CORRUPT, f"object {index}: bad polygon point {p!r}")
        points.append((float(p[0]), float(p[1])))
    return points


def draw_polygons(
    path: str | Path,
    names: dict[str, int],
    *,
    background: int,
    unknown_fill: int | None = None,
) -> np.ndarray:
    """Draw a Cityscapes-style polygon JSON into a label map as the AutoNUE toolkit's
    ``json2labelImg`` does (see the module docstring for the rules).

    Args:
        path: the ``*_gtFine_polygons.json`` file.
        names: label name -> id.
        background: id of the pixels no polygon covers.
        unknown_fill: id painted for a name not in ``names``; ``None`` raises.

    Returns:
        ``(imgHeight, imgWidth)`` int32 ids.

    Raises:
        SampleError: missing or unreadable file, malformed JSON (``CORRUPT``), or a label
            name not in ``names`` (``UNKNOWN_LABEL``, naming it) when ``unknown_fill`` is
            ``None``.
    """
    path = Path(path)
    data = _read_json(path)
    width, height = _size(path, data, "imgWidth"), _size(path, data, "imgHeight")
    objects = data.get("objects")
    if not isinstance(objects, list):
        raise SampleError(path, CORRUPT, "polygon JSON has no 'objects' list")
    top = max([background, *names.values(), unknown_fill or 0])
    mode = "L" if 0 <= min([background, *names.values()]) and top <= 255 else "I"
    image = Image.new(mode, (width, height), background)
    draw = ImageDraw.Draw(image)
    unknown: list[str] = []
    for index, obj in enumerate(objects):
        if not isinstance(obj, dict) or "label" not in obj or "polygon" not in obj:
            raise SampleError(path, CORRUPT, f"object {index} has no 'label' and 'polygon'")
        if obj.get("deleted"):
            continue
        points = _points(path, index, obj["polygon"])
        if len(points) < 3:
            continue
        label = str(obj["label"])
        if label not in names and label.endswith("group"):
            label = label[: -len("group")]
        value = names.get(label)
        if value is None:
            if unknown_fill is None:
                unknown.append(str(obj["label"]))
                continue
            value = unknown_fill
        draw.polygon(points, fill=value)
    if unknown:
        raise SampleError(
            path,
            UNKNOWN_LABEL,
            f"label names {sorted(set(unknown))} are not in the taxonomy "
            "(pass unknown_as_ignore to paint them as ignore)",
        )
    return np.asarray(image, dtype=np.int32).copy()


def taxonomy_names(taxonomy: Taxonomy) -> tuple[dict[str, int], int]:
    """``(name -> id, background id)`` of a taxonomy for :func:`draw_polygons`.

    Raises:
        DatasetError: the taxonomy has neither an ``unlabeled`` class nor an ignored one.
    """
    names = {c.name: c.id for c in taxonomy.classes}
    if BACKGROUND_NAME in names:
        return names, names[BACKGROUND_NAME]
    if taxonomy.ignore_ids:
        return names, taxonomy.ignore_ids[0]
    raise DatasetError(
        f"taxonomy {taxonomy.name!r} has no {BACKGROUND_NAME!r} class to fill the pixels "
        "no IDD polygon covers"
    )


@register_dataset
class IddLabelIds(SegmentationDataset):
    """IDD images with labels drawn from the polygon JSON at the toolkit ``id`` level."""

    name = "idd_labelids"
    taxonomy_name = "idd_labelids"
    splits = ("train", "val", "test")
    unlabelled_splits = ("test",)
    layout = (
        "leftImg8bit/{split}/<seq>/<frame>_leftImg8bit.{png,jpg} + gtFine/{split}/<seq>/"
        "<frame>_gtFine_labelids.png, else <frame>_gtFine_polygons.json (drawn on the fly)"
    )

    def list_pairs(self) -> list[FilePair]:
        image_dir = self.require_dir(self.source_root / "leftImg8bit" / self.split, "image")
        if not self.has_labels:
            return self.pairs_by_suffix(
                image_dir, None, image_suffix=IMAGE_SUFFIXES, label_suffix=LABELIDS_SUFFIX
            )
        label_dir = self.require_dir(self.root / "gtFine" / self.split, "label")
        pairs = []
        for img in walk_files(image_dir):
            suffix = next((s for s in IMAGE_SUFFIXES if img.name.endswith(s)), None)
            if suffix is None:
                continue
            rel = img.relative_to(image_dir)
            base = label_dir / rel.parent / rel.name[: -len(suffix)]
            png = base.with_name(base.name + LABELIDS_SUFFIX)
            polygons = base.with_name(base.name + POLYGONS_SUFFIX)
            if png.exists():
                pairs.append(FilePair(img, png))
            elif not self.prepared and polygons.exists():
                pairs.append(FilePair(img, polygons))
            else:
                self.missing_label(img, png if self.prepared else polygons)
        return pairs

    @cached_property
    def _names(self) -> tuple[dict[str, int], int]:
        return taxonomy_names(self.taxonomy)

    def read_label(self, path: Path) -> np.ndarray:
        """``(H, W)`` int32 ids: a label PNG as stored, a polygon JSON drawn
        (:func:`draw_polygons`; ``H, W`` = its ``imgHeight, imgWidth``)."""
        if path.name.endswith(".json"):
            names, background = self._names
            fill = None
            if self.unknown_as_ignore:
                fill = self.taxonomy.ignore_ids[0] if self.taxonomy.ignore_ids else background
            return draw_polygons(path, names, background=background, unknown_fill=fill)
        return super().read_label(path)


@register_preparer
class IddLabelIdsPreparer(Preparer):
    """Draw every ``gtFine/<split>/<seq>/<frame>_gtFine_polygons.json`` into
    ``gtFine/<split>/<seq>/<frame>_gtFine_labelids.png`` (mode L, toolkit ``id``
    column), as ``createLabels.py --id-type id`` does. Optional: the reader draws the
    JSON on the fly otherwise."""

    name = "idd_labelids"
    splits = ("train", "val")
    required = False
    holds_images = False

    def present_splits(self) -> tuple[str, ...]:
        return tuple(s for s in self.splits if (self.root / "gtFine" / s).is_dir())

    def tasks(self, split: str) -> list[PrepareTask]:
        label_dir = self.root / "gtFine" / split
        if not label_dir.is_dir():
            raise DatasetError(
                f"{label_dir}: polygon folder of IDD split {split!r} not found; expected "
                f"gtFine/{split}/<seq>/<frame>{POLYGONS_SUFFIX}"
            )
        tasks = []
        for js in (p for p in walk_files(label_dir) if p.name.endswith(POLYGONS_SUFFIX)):
            rel = js.relative_to(self.root)
            out = rel.with_name(rel.name[: -len(POLYGONS_SUFFIX)] + LABELIDS_SUFFIX)
            tasks.append(PrepareTask(rel.as_posix(), (out.as_posix(),), str(js)))
        return tasks

    def convert(self, task: PrepareTask) -> dict[str, bytes]:
        names, background = taxonomy_names(load_taxonomy(IddLabelIds.taxonomy_name))
        ids = draw_polygons(task.source, names, background=background)
        return {task.outputs[0]: encode_label_png(ids.astype(np.uint8))}
