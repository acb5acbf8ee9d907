"""The world's taxonomies, mappings and labelling policies.

Every synthetic taxonomy gives each class its index as raw id (raw id == train id) and
``IGNORE_INDEX`` to its ignored class. A scene is rendered once in the fine source
taxonomy (``(H, W)`` uint8 ids ``0..7``); each dataset's labelling policy then derives
its own label map from it (:func:`fine_labels`, :func:`coarse_labels`,
:func:`lidar_labels`). :data:`MAPPINGS` are the ontology mappings ``extra -> source``
written next to the datasets.
"""

from __future__ import annotations

import numpy as np

from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy import Taxonomy

#: Source (fine) classes: raw id == train id == index in this tuple.
SOURCE_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("building", (70, 70, 70)),
    ("vegetation", (107, 142, 35)),
    ("sky", (70, 130, 180)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("person", (220, 20, 60)),
)
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, TRUCK, PERSON = range(len(SOURCE_CLASSES))

#: Extra dataset A (coarse): ``(name, colour, fine classes it covers)``.
COARSE_CLASSES: tuple[tuple[str, tuple[int, int, int], tuple[int, ...]], ...] = (
    ("ground", (128, 64, 128), (ROAD, SIDEWALK)),
    ("building", (70, 70, 70), (BUILDING,)),
    ("vegetation", (107, 142, 35), (VEGETATION,)),
    ("sky", (70, 130, 180), (SKY,)),
    ("vehicle", (0, 0, 142), (CAR, TRUCK)),
    ("person", (220, 20, 60), (PERSON,)),
)

#: Extra dataset B (LiDAR-like): every class but sky; sky, windows and upper facades void.
LIDAR_CLASSES: tuple[tuple[str, tuple[int, int, int], tuple[int, ...]], ...] = (
    ("road", (128, 64, 128), (ROAD,)),
    ("sidewalk", (244, 35, 232), (SIDEWALK,)),
    ("building", (70, 70, 70), (BUILDING,)),
    ("vegetation", (107, 142, 35), (VEGETATION,)),
    ("car", (0, 0, 142), (CAR,)),
    ("truck", (0, 0, 70), (TRUCK,)),
    ("person", (220, 20, 60), (PERSON,)),
)

#: Name of the ignored class in every synthetic taxonomy; its raw id is ``IGNORE_INDEX``.
UNLABELLED = "unlabelled"
VOID = "void"

#: Facade height (in road half-widths) above which the LiDAR-like policy leaves building void.
LIDAR_MAX_HEIGHT: float = 0.9


def _taxonomy(name: str, title: str, classes: tuple[tuple, ...], void: str) -> Taxonomy:
    """A taxonomy whose raw ids are the indices of ``classes`` (``(name, colour, ...)``
    entries), plus the ignored class ``void`` with raw id ``IGNORE_INDEX``."""
    entries = [{"id": i, "name": n, "color": list(c)} for i, (n, c, *_) in enumerate(classes)]
    entries.append({"id": IGNORE_INDEX, "name": void, "color": [0, 0, 0], "ignore": True})
    return Taxonomy.from_dict(
        {
            "name": name,
            "title": title,
            "label_format": "id",
            "source": "labelbridge procedural demo world (labelbridge.world)",
            "classes": entries,
        }
    )


def source_taxonomy() -> Taxonomy:
    """The fine source taxonomy ``synth_source`` (8 train classes + ``unlabelled``)."""
    return _taxonomy("synth_source", "Synthetic street, fine", SOURCE_CLASSES, UNLABELLED)


def coarse_taxonomy() -> Taxonomy:
    """Extra A's taxonomy ``synth_coarse`` (ground, vehicle merged; 6 train classes)."""
    return _taxonomy("synth_coarse", "Synthetic street, coarse", COARSE_CLASSES, UNLABELLED)


def lidar_taxonomy() -> Taxonomy:
    """Extra B's taxonomy ``synth_lidar`` (no sky; 7 train classes + ``void``)."""
    return _taxonomy("synth_lidar", "Synthetic street, LiDAR-projected", LIDAR_CLASSES, VOID)


def _fine_lut(classes: tuple[tuple[str, tuple[int, int, int], tuple[int, ...]], ...]) -> np.ndarray:
    """``(256,)`` uint8 lookup fine id -> extra raw id (``IGNORE_INDEX`` where uncovered)."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for extra_id, (_, _, fine) in enumerate(classes):
        lut[list(fine)] = extra_id
    return lut


COARSE_LUT = _fine_lut(COARSE_CLASSES)
LIDAR_LUT = _fine_lut(LIDAR_CLASSES)

#: Ontology mappings ``extra -> source`` (written to ``<world>/mappings/``); the
#: taxonomies are named by paths relative to the mapping file.
MAPPINGS: dict[str, dict] = {
    "extra_a": {
        "source": "../source/taxonomy.yaml",
        "extra": "../extra_a/taxonomy.yaml",
        "unlabelled": "ignore",
        "mapping": {
            "ground": ["road", "sidewalk"],
            "building": ["building"],
            "vegetation": ["vegetation"],
            "sky": ["sky"],
            "vehicle": ["car", "truck"],
            "person": ["person"],
        },
    },
    "extra_b": {
        "source": "../source/taxonomy.yaml",
        "extra": "../extra_b/taxonomy.yaml",
        "unlabelled": "constrained",
        "mapping": {
            "road": ["road"],
            "sidewalk": ["sidewalk"],
            "building": ["building"],
            "vegetation": ["vegetation"],
            "car": ["car"],
            "truck": ["truck"],
            "person": ["person"],
            VOID: ["sky", "building"],
        },
    },
}

#: Comment lines written at the top of each mapping file.
MAPPING_HEADERS = {
    "extra_a": "# extra_a (coarse policy) -> source: 'ground' may be road or sidewalk, 'vehicle' car or truck.\n",
    "extra_b": (
        "# extra_b (LiDAR-projected labels) -> source. Its void hides the sky, building windows\n"
        "# and upper facades systematically, so void pixels are constrained to {sky, building}.\n"
    ),
}


def fine_labels(fine: np.ndarray, void: np.ndarray) -> np.ndarray:
    """Source policy: the fine ``(H, W)`` uint8 ids as rendered (``void`` unused)."""
    return fine


def coarse_labels(fine: np.ndarray, void: np.ndarray) -> np.ndarray:
    """Extra A's policy: ``(H, W)`` uint8 fine ids -> ``synth_coarse`` raw ids."""
    return COARSE_LUT[fine]


def lidar_labels(fine: np.ndarray, void: np.ndarray) -> np.ndarray:
    """Extra B's policy: ``(H, W)`` uint8 fine ids -> ``synth_lidar`` raw ids, with the
    ``(H, W)`` bool ``void`` pixels (sky, windows, upper facades) set to ``IGNORE_INDEX``."""
    out = LIDAR_LUT[fine]
    out[void] = IGNORE_INDEX
    return out
