"""The layout of a pseudo-label folder: what ``labelbridge pseudo-label`` writes and
training reads as a label source (one contract, shared by the writer and the reader).

::

    <folder>/pseudo_labels.yaml       taxonomy: <source taxonomy>, and the run's settings
    <folder>/<sample key>.png         source train ids, uint8 (IGNORE_INDEX = ignore)
    <folder>/<sample key>_conf.png    confidence x 255 (optional)
    <folder>/<sample key>_soft.npz    top-k soft labels (optional)
    <folder>/previews/<key with / as __>.png
    <folder>/report.json, report.md   what the run made (written when a shard finishes)
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from labelbridge.errors import ConfigError, DatasetError, TaxonomyError
from labelbridge.taxonomy import Taxonomy, load_taxonomy
from labelbridge.yamlio import load_yaml

#: The folder's description file (``taxonomy:`` and the settings that made it).
INFO_FILE = "pseudo_labels.yaml"
#: The run's report of the folder (``images.total``, ``images.remaining``, pixel shares).
REPORT_FILE = "report.json"


def pseudo_label_taxonomy(folder: Path) -> str:
    """The ``taxonomy:`` entry of ``<folder>/pseudo_labels.yaml``.

    Raises:
        ConfigError: the folder or file is missing, or has no ``taxonomy`` string.
    """
    if not folder.is_dir():
        raise ConfigError(f"{folder}: pseudo-label folder not found")
    doc = load_yaml(folder / INFO_FILE)
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("taxonomy"), str):
        raise ConfigError(
            f"{doc.path}: needs 'taxonomy: <name>' (the taxonomy of the pseudo-labels)"
        )
    return data["taxonomy"]


def soft_top_k(folder: Path) -> int:
    """How many soft-label classes per pixel the folder holds (``outputs.soft_top_k`` of
    ``pseudo_labels.yaml``).

    Raises:
        ConfigError: the folder holds none (naming its manifest and the way to make them).
    """
    if not folder.is_dir():
        raise ConfigError(f"{folder}: pseudo-label folder not found")
    doc = load_yaml(folder / INFO_FILE)
    outputs = doc.data.get("outputs") if isinstance(doc.data, dict) else None
    k = outputs.get("soft_top_k", 0) if isinstance(outputs, dict) else 0
    if not isinstance(k, int) or k < 1:
        raise ConfigError(
            f"{doc.path}: this folder holds no soft labels; pseudo-label with "
            "'outputs: {soft_labels: {enabled: true, top_k: 3}}' to train on soft labels"
        )
    return k


def check_pseudo_taxonomy(folder: Path, taxonomy: Taxonomy) -> None:
    """Refuse a pseudo-label folder whose taxonomy is not ``taxonomy``.

    Raises:
        ConfigError: naming the folder's manifest and both taxonomies.
    """
    name = pseudo_label_taxonomy(folder)
    if name == taxonomy.name:
        return
    try:
        theirs = load_taxonomy(name, base_dir=folder)
    except TaxonomyError:
        theirs = None
    if theirs is None or not theirs.same_train_space(taxonomy):
        raise ConfigError(
            f"{folder / INFO_FILE}: pseudo-labels are in taxonomy {name!r}, but training "
            f"uses {taxonomy.name!r}; pseudo-label with a teacher of {taxonomy.name!r}"
        )


LABEL_SUFFIX = ".png"
CONF_SUFFIX = "_conf.png"
SOFT_SUFFIX = "_soft.npz"
PREVIEW_DIR = "previews"


def label_relpath(key: str, suffix: str = LABEL_SUFFIX) -> str:
    """Path of a sample's file (``suffix``: label, confidence or soft labels), relative to
    the folder.

    Raises:
        DatasetError: keys that would escape the folder (absolute, ``..``, empty).
    """
    p = Path(key)
    if p.is_absolute() or ".." in p.parts or not key:
        raise DatasetError(f"sample key {key!r} is not a safe relative path")
    return f"{p.as_posix()}{suffix}"


def preview_relpath(key: str) -> str:
    """Path of a sample's preview panel, relative to the folder."""
    return f"{PREVIEW_DIR}/{key.replace('/', '__')}.png"


#: Arrays of a soft-label file: ``ids`` ``(k, H, W)`` uint8 class ids best first
#: (``IGNORE_INDEX`` = none) and ``probs`` ``(k, H, W)`` float16 their probabilities.
SOFT_ARRAYS = ("ids", "probs")


def read_soft_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, probs)`` of a ``<key>_soft.npz`` file (see :data:`SOFT_ARRAYS`).

    Raises:
        DatasetError: unreadable, not an ``.npz``, arrays missing or of other shapes.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            ids, probs = (npz[name] for name in SOFT_ARRAYS)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path}: not a soft-label file with arrays {SOFT_ARRAYS} ({exc})"
        ) from None
    if ids.ndim != 3 or ids.shape != probs.shape:
        raise DatasetError(
            f"{path}: soft-label arrays of shapes {ids.shape} and {probs.shape}, expected two "
            "(k, H, W) arrays"
        )
    return ids, probs
