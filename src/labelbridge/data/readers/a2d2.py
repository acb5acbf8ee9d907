"""A2D2 (Audi Autonomous Driving Dataset) camera semantic segmentation, colour-coded.

Layout (``camera_lidar_semantic.tar``; A2D2 ``README-SemSeg.txt``)::

    camera_lidar_semantic/class_list.json     {"#ff0000": "Car 1", ...}, 55 entries
    camera_lidar_semantic/<YYYYMMDD_hhmmss>/camera/<cam>/<YYYYMMDDhhmmss>_camera_<pos>_<ID>.png
    camera_lidar_semantic/<YYYYMMDD_hhmmss>/label/<cam>/<YYYYMMDDhhmmss>_label_<pos>_<ID>.png

Sources (facts only): the release's ``README-SemSeg.txt`` (41,277 frames in 23 scene
folders named ``YYYYMMDD_hhmmss``; each with ``camera`` (PNG images and JSON info files),
``lidar`` (NPZ) and ``label`` (label images); camera folders ``cam_front_center``,
``cam_front_left``, ``cam_front_right``, ``cam_side_left``, ``cam_side_right``,
``cam_rear_center``; example
``20180807_145028/camera/cam_front_center/20180807145028_camera_frontcenter_000001617.png``
with label ``20180807_145028/label/cam_front_center/20180807145028_label_frontcenter_000001617.png``);
``class_list.json`` (hex colour -> label name) as copied in UniBwTAS/data-priors
``datasets/a2d2/lists/class_list.json``; the data-priors reader globs
``camera_lidar_semantic/*/camera/*/*.png`` (all cameras).

The root is the folder that holds ``camera_lidar_semantic/`` (or that folder itself).
Label images are RGB; each pixel's colour is decoded through the ``a2d2`` taxonomy (its 55
classes are the entries of ``class_list.json`` in file order, ids 0..54). A colour outside
the list is an error naming the file (``unknown_as_ignore`` maps it to ignore).

Merged classes: the reference implementation merges instance colours of a kind (Car 1..4,
Bicycle 1..4, Pedestrian 1..3, Truck 1..3, Small vehicles 1..3, Traffic signal 1..3,
Traffic sign 1..3, Utility vehicle 1..2) into one label. This reader does not merge: it
returns one id per colour; the taxonomy's ``groups`` (``car: [Car 1, ..., Car 4]``, ...)
carry the merged names, so a mapping row for ``car`` stands for all four ids.

``class_list.json``: when present (in ``camera_lidar_semantic/`` or the root) its colours
and names must agree with the taxonomy; otherwise :class:`DatasetError` names the file and
the differing entries (a different release, or a wrong ``taxonomy=``).

Splits: ``all`` only. The release defines no train/val/test split (the reference trains on
all frames). Pass ``cameras=[...]`` (camera folder names) to read only some cameras.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError
from labelbridge.taxonomy import Taxonomy

#: Top folder of the release archive.
A2D2_FOLDER = "camera_lidar_semantic"
CLASS_LIST = "class_list.json"
#: Camera folders named in README-SemSeg.txt.
A2D2_CAMERAS = (
    "cam_front_center",
    "cam_front_left",
    "cam_front_right",
    "cam_side_left",
    "cam_side_right",
    "cam_rear_center",
)


def hex_colour(text: str) -> tuple[int, int, int]:
    """``"#ff0080"`` -> ``(255, 0, 128)``.

    Raises:
        ValueError: not a ``#rrggbb`` string.
    """
    if not (isinstance(text, str) and len(text) == 7 and text.startswith("#")):
        raise ValueError(f"not a '#rrggbb' colour: {text!r}")
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def class_list_differences(path: Path, taxonomy: Taxonomy) -> list[str]:
    """Entries of a ``class_list.json`` that disagree with ``taxonomy`` (empty: they agree).

    Raises:
        DatasetError: the file cannot be read or is not a ``{"#rrggbb": name}`` object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object {'#rrggbb': label name}")
        listed = {hex_colour(k.lower()): str(v) for k, v in data.items()}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable A2D2 class list: {exc}") from None
    known = {tuple(c.color): c for c in taxonomy.classes}
    problems = []
    for colour, name in listed.items():
        cls = known.get(colour)
        if cls is None:
            problems.append(f"{name!r} {list(colour)} is no colour of taxonomy {taxonomy.name!r}")
        elif name != cls.name and name not in cls.aliases:
            problems.append(f"{list(colour)} is {name!r} here but {cls.name!r} in the taxonomy")
    for colour, cls in known.items():
        if colour not in listed:
            problems.append(f"taxonomy class {cls.name!r} {list(colour)} is not in the file")
    return problems


@register_dataset
class A2d2(SegmentationDataset):
    """A2D2 reader.

    Args:
        root, split, **kwargs: see :class:`SegmentationDataset`.
        cameras: camera folder names to read (default: all present).
    """

    name = "a2d2"
    taxonomy_name = "a2d2"
    release_folder = A2D2_FOLDER
    splits = ("all",)
    layout = (
        "camera_lidar_semantic/<YYYYMMDD_hhmmss>/camera/<cam>/<stamp>_camera_<pos>_<ID>.png + "
        ".../label/<cam>/<stamp>_label_<pos>_<ID>.png (colour)"
    )

    def __init__(
        self,
        root: str | Path | None,
        split: str,
        *,
        cameras: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.cameras = list(cameras) if cameras is not None else None
        super().__init__(root, split, **kwargs)

    def check_class_list(self) -> None:
        """Compare ``class_list.json`` (when present) with the taxonomy.

        Raises:
            DatasetError: naming the file and up to ten differing entries.
        """
        for folder in (self.release_dir, self.root):
            path = folder / CLASS_LIST
            if path.is_file():
                problems = class_list_differences(path, self.taxonomy)
                if problems:
                    shown = "; ".join(problems[:10])
                    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
                    raise DatasetError(
                        f"{path}: A2D2 class list disagrees with taxonomy "
                        f"{self.taxonomy.name!r}: {shown}{more}"
                    )
                return

    def list_pairs(self) -> list[FilePair]:
        self.check_class_list()
        base = self.release_dir
        scenes = sorted(p for p in base.iterdir() if p.is_dir() and (p / "camera").is_dir())
        if not scenes:
            raise DatasetError(
                f"{base}: no A2D2 scene folder with camera/ found (expected layout: {self.layout})"
            )
        pairs: list[FilePair] = []
        for scene in scenes:
            camera_root = scene / "camera"
            if self.cameras is not None:
                cams = self.cameras
            else:
                cams = sorted(p.name for p in camera_root.iterdir() if p.is_dir())
            for cam in cams:
                image_dir = camera_root / cam
                if not image_dir.is_dir():  # a scene without this camera
                    continue
                label_dir = scene / "label" / cam
                for image in sorted(image_dir.glob("*.png")):
                    if "_camera_" not in image.name:
                        continue
                    label = label_dir / image.name.replace("_camera_", "_label_", 1)
                    if label.exists():
                        pairs.append(FilePair(image, label))
                    else:
                        self.missing_label(image, label)
        if self.cameras is not None and not pairs and not self.skipped:
            raise DatasetError(
                f"{base}: no image of cameras {self.cameras} found (camera folders: "
                f"{list(A2D2_CAMERAS)})"
            )
        return pairs
