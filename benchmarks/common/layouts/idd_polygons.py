"""Tiny IDD datasets in the published polygon layout (reader ``idd_labelids``).

Layout of the IDD segmentation release as the AutoNUE toolkit (github.com/AutoNUE/
public-code, README and ``preperation/createLabels.py``) describes it, Cityscapes-style::

    leftImg8bit/{train,val,test}/<seq>/<frame>_leftImg8bit.png
    gtFine/{train,val}/<seq>/<frame>_gtFine_polygons.json

The polygon JSON has the keys the toolkit's ``helpers/annotation.py`` reads:
``imgHeight``, ``imgWidth``, ``objects`` = ``[{"label", "polygon": [[x, y], ...],
"deleted"}]``. :func:`write_polygons` writes a JSON that draws exactly a given id map
(one degenerate polygon per horizontal run of equal ids: PIL fills the pixels on a
polygon's boundary, so ``[(x0, y), (x1, y), (x1, y), (x0, y)]`` covers pixels
``x0..x1`` of row ``y``). Ids outside the taxonomy become label names no IDD label
has, so the unknown-label corruption becomes an unknown name.

``idd_polygons_prepared`` writes the published layout to ``<root>_published``, runs
``prepare_dataset("idd_labelids", ...)`` into ``root`` (labels only: images stay in the
published folder).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from labelbridge.taxonomy import Taxonomy

from .base import LayoutFixture, fixture_taxonomy, write_id_label

TAXONOMY = "idd_labelids"
#: (split, sequence, frame) of the labelled samples; names as in IDD part I.
LABELLED = [
    ("train", "201", "frame0029"),
    ("train", "201", "frame0299"),
    ("train", "202", "frame0001"),
    ("val", "119", "frame0300"),
]
TEST = [("test", "300", "frame0002")]


def unknown_name(label_id: int) -> str:
    """A label name no IDD taxonomy class has, standing for ``label_id``."""
    return f"no idd label {label_id}"


def runs(ids: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(row, x0, x1, id)`` of every horizontal run of equal ids (``x1`` inclusive)."""
    out = []
    for y, row in enumerate(np.asarray(ids)):
        start = 0
        for x in range(1, len(row) + 1):
            if x == len(row) or row[x] != row[start]:
                out.append((y, start, x - 1, int(row[start])))
                start = x
    return out


def polygons_json(ids: np.ndarray, taxonomy: Taxonomy) -> dict:
    """A Cityscapes-style polygon annotation that draws exactly ``ids`` ``(H, W)``."""
    names = {c.id: c.name for c in taxonomy.classes}
    objects = [
        {
            "label": names.get(v, unknown_name(v)),
            "polygon": [[x0, y], [x1, y], [x1, y], [x0, y]],
            "deleted": 0,
        }
        for y, x0, x1, v in runs(ids)
    ]
    return {"imgHeight": int(ids.shape[0]), "imgWidth": int(ids.shape[1]), "objects": objects}


def write_polygons(path: Path, ids: np.ndarray) -> None:
    """``label_writer`` of the polygon layout: ``path`` is a ``*_gtFine_polygons.json``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tax = fixture_taxonomy(TAXONOMY)
    path.write_text(json.dumps(polygons_json(np.asarray(ids), tax), indent=4))


def make_published(root: Path) -> LayoutFixture:
    """The published IDD polygon layout at ``root`` (labels: polygon JSON only)."""
    fx = LayoutFixture(
        "idd_labelids", root, fixture_taxonomy(TAXONOMY), label_writer=write_polygons
    )
    for split, seq, frame in LABELLED:
        fx.add(
            split,
            root / f"leftImg8bit/{split}/{seq}/{frame}_leftImg8bit.png",
            root / f"gtFine/{split}/{seq}/{frame}_gtFine_polygons.json",
        )
    # other toolkit outputs a gtFine folder may hold (default --id-type level3Id) are ignored
    seq, frame = LABELLED[0][1:]
    write_id_label(
        root / f"gtFine/train/{seq}/{frame}_gtFine_labellevel3Ids.png", np.zeros((6, 8), np.int32)
    )
    for split, seq, frame in TEST:
        fx.add(split, root / f"leftImg8bit/{split}/{seq}/{frame}_leftImg8bit.png", None)
    fx.sort_keys()
    return fx


def make_prepared(root: Path) -> LayoutFixture:
    """Published layout at ``<root>_published``, prepared into ``root``."""
    from labelbridge.data.prepare import prepare_dataset
    from labelbridge.data.readers.idd_labelids import LABELIDS_SUFFIX, POLYGONS_SUFFIX

    published = root.parent / (root.name + "_published")
    pub = make_published(published)
    report = prepare_dataset("idd_labelids", published, root, progress=False)
    assert report.ok, report.to_dict()
    files = {}
    for key, (image, label) in pub.files.items():
        if label is not None:
            rel = label.relative_to(published)
            label = root / rel.with_name(rel.name[: -len(POLYGONS_SUFFIX)] + LABELIDS_SUFFIX)
        files[key] = (image, label)
    return LayoutFixture(
        dataset=pub.dataset,
        root=root,
        taxonomy=pub.taxonomy,
        keys={s: list(k) for s, k in pub.keys.items()},
        labels=dict(pub.labels),
        images=dict(pub.images),
        files=files,
    )


LAYOUTS_EXTRA = {"idd_polygons": make_published, "idd_polygons_prepared": make_prepared}
PUBLISHED_EXTRA = {"idd_labelids": make_published}
