"""Tiny fixture datasets in each published layout, written into a temporary folder.

Every ``make_<layout>(root)`` writes a few 8x6 images with labels painted from three
classes of the reader's taxonomy and returns a :class:`LayoutFixture` holding what a
reader must give back: the keys per split (in order), the exact raw-id label of every
labelled key, and which images were stored losslessly (so pixels can be compared).

Taxonomies: the built-in one of the reader when it exists, else a tiny stand-in with
the same label format (so these helpers work while taxonomy files are being written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from labelbridge.errors import TaxonomyError
from labelbridge.taxonomy import Taxonomy, load_taxonomy

W, H = 8, 6


@dataclass
class LayoutFixture:
    """A generated dataset and what reading it must give.

    Attributes:
        dataset: registry name of the reader.
        root: dataset root.
        taxonomy: the taxonomy the labels were painted from (pass it to the reader).
        keys: split -> sample keys in reader order.
        labels: key -> expected ``(H, W)`` int32 raw ids, or ``None`` (unlabelled).
        images: key -> the ``(H, W, 3)`` uint8 image written, for lossless formats only.
        files: key -> (image path, label path or None) as written.
        label_writer: writes a raw-id ``(H, W)`` label to a label path in the layout's
            own encoding (panoptic PNG + JSON, polygons, ...); ``None``: id PNG or the
            taxonomy's colours. The bad-input cases rewrite labels through it.
    """

    dataset: str
    root: Path
    taxonomy: Taxonomy
    keys: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, np.ndarray | None] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, tuple[Path, Path | None]] = field(default_factory=dict)
    label_writer: Callable[[Path, np.ndarray], None] | None = None

    def add(
        self,
        split: str,
        image_path: Path,
        label_path: Path | None,
        *,
        label_mode: str = "L",
    ) -> str:
        """Write one image (and its label unless ``label_path`` is None); returns the key."""
        index = len(self.files)
        rng = np.random.default_rng(index)
        image = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        write_image(image_path, image)
        key = image_path.relative_to(self.root).with_suffix("").as_posix()
        if image_path.suffix.lower() == ".png":
            self.images[key] = image
        label = None
        if label_path is not None:
            label = paint_label(self.taxonomy, index)
            if self.label_writer is not None:
                self.label_writer(label_path, label)
            elif self.taxonomy.label_format == "color":
                write_color_label(label_path, label, self.taxonomy)
            else:
                write_id_label(label_path, label, mode=label_mode)
        self.keys.setdefault(split, []).append(key)
        self.labels[key] = label
        self.files[key] = (image_path, label_path)
        return key

    def sort_keys(self) -> None:
        """Order each split's keys as readers list them (sorted by image path)."""
        for split, keys in self.keys.items():
            self.keys[split] = sorted(keys, key=lambda k: self.files[k][0])


# ---------------------------------------------------------------------------- writing
def write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        Image.fromarray(image).save(path, quality=95)
    else:
        Image.fromarray(image).save(path)


def write_id_label(path: Path, label: np.ndarray, *, mode: str = "L") -> None:
    """Write raw ids as mode L, P (palette index = id) or I;16."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(label.astype(np.uint16)).save(path)
        return
    im = Image.fromarray(label.astype(np.uint8), mode="L")
    if mode == "P":
        im = im.convert("P")  # palette index = grey value (identity palette)
        im.putpalette(
            [v for i in range(256) for v in ((i * 7) % 256, (i * 31) % 256, (i * 101) % 256)]
        )
    im.save(path)


def write_color_label(path: Path, label: np.ndarray, taxonomy: Taxonomy) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colours = {c.id: c.color for c in taxonomy.classes}
    rgb = np.zeros((*label.shape, 3), dtype=np.uint8)
    for cid, colour in colours.items():
        rgb[label == cid] = colour
    Image.fromarray(rgb).save(path)


def paint_ids(taxonomy: Taxonomy) -> list[int]:
    """Three ids of ``taxonomy`` with distinct colours (the first such classes)."""
    chosen, seen = [], set()
    for c in taxonomy.classes:
        if c.color in seen:
            continue
        chosen.append(c.id)
        seen.add(c.color)
        if len(chosen) == 3:
            return chosen
    raise ValueError(f"taxonomy {taxonomy.name} has fewer than 3 distinct colours")


def paint_label(taxonomy: Taxonomy, index: int) -> np.ndarray:
    """``(H, W)`` int32: diagonal stripes of three taxonomy ids, shifted by ``index``."""
    ids = np.array(paint_ids(taxonomy), dtype=np.int32)
    yy, xx = np.mgrid[0:H, 0:W]
    return ids[(xx + yy + index) % 3]


def fixture_taxonomy(name: str, label_format: str = "id") -> Taxonomy:
    """The built-in taxonomy ``name``, or a tiny stand-in when it does not exist yet."""
    try:
        return load_taxonomy(name)
    except TaxonomyError:
        return Taxonomy.from_dict(
            {
                "name": f"{name}_standin",
                "label_format": label_format,
                "classes": [
                    {"id": 0, "name": "void", "color": [0, 0, 0], "ignore": True},
                    {"id": 1, "name": "a", "color": [10, 200, 30]},
                    {"id": 2, "name": "b", "color": [200, 10, 30]},
                ],
            }
        )
