"""ApolloScape scene parsing, label-id PNGs (taxonomy ``apolloscape``).

Layout (one folder per downloaded road archive, ``road0X_ins`` or ``road0X_seg``)::

    road01_ins/ColorImage/Record011/Camera 5/170908_061502408_Camera_5.jpg
    road01_ins/Label/Record011/Camera 5/170908_061502408_Camera_5.png       mode L ids
    road02_ins/Label/Record004/Camera 6/170927_064253341_Camera_6_bin.png   (other roads)
    road01_ins_train.lst   lines "<image path>\\t<label path>", relative to the root
    (or lists/road01_ins_train.lst)

Sources (facts only):

* the paper's reference implementation (UniBwTAS/data-priors): ``DatasetClasses.py``
  ``ApolloScape`` globs ``road*/ColorImage/*/*/*.jpg`` and
  ``road*_{seg,ins}/Label/*/*/*Camera_{5,6}{_bin,}.png``; its
  ``datasets/ApolloScape/lists/road0{1,2,3}_ins_{train,val,test}.lst`` hold tab-separated
  "<image>\\t<label>" lines such as
  ``road01_ins/ColorImage/Record011/Camera 5/170908_061502408_Camera_5.jpg`` /
  ``road01_ins/Label/Record011/Camera 5/170908_061502408_Camera_5.png``; road02 and road03
  labels are named ``<stem>_bin.png``. Line counts there: train 22055 + 5754 + 13151,
  val 5796 + 1087 + 1444, test 2222 + 2918 + 1457 (road01 + road02 + road03).
* the ApolloScape dataset-api README (lane segmentation, same folder scheme):
  ``{type}_{road id}/{type}/{record id}/{camera id}/{timestamp}_{camera id}{ext}``, cameras
  always 'Camera 5' and 'Camera 6', '.jpg' images and '.png' ground truth.
* NTL-Remi/ApolloScope (scene-parsing loader): path regex
  ``road<id>_<section>/<subsection>/Record<n>/Camera <n>/<stamp>_Camera_<n>[_.]<type>``
  with sections ``seg`` / ``ins``, subsections ``ColorImage`` / ``Label`` / ``Depth`` and
  label file types ``bin.png`` and ``instanceIds.png``.
* third-party converters read the ``road0X_ins_{train,val,test}.lst`` files from the
  scene-parsing root as "provided by the original dataset authors", tab-delimited.

Label of an image: ``<road>/Label/<record>/<camera>/<stem>.png``, else ``<stem>_bin.png``
(when both exist, ``<stem>.png`` is used); ``<stem>_instanceIds.png`` and other files
are not read. Ids are those of the toolkit's ``labels_apollo.py`` (taxonomy
``apolloscape``).

Splits:

* ``all``: every ``Camera 5`` / ``Camera 6`` image of every record folder of every
  ``road*`` folder under the root, sorted by path.
* ``train`` / ``val`` / ``test``: the lines of every ``road*_<split>.lst`` file in the root
  or in ``<root>/lists/`` (a root file wins over a ``lists/`` file of the same name), files
  in name order, lines in file order. A listed label that is missing is looked for under
  the other name (``_bin.png`` or not) before the image is reported without label. A line
  with only an image path is an unlabelled image.

Confirmed: the folder scheme, file names, cameras, the list-file names and line format
(from the sources above). Not confirmed: whether every road archive of the release ships
list files (the data-priors lists cover road01..road03 ``_ins`` only); with no list file
for a split the reader says so and ``all`` still reads everything.
"""

from __future__ import annotations

from pathlib import Path

from labelbridge.data.base import FilePair, SegmentationDataset
from labelbridge.data.registry import register_dataset
from labelbridge.errors import DatasetError

#: Camera folders of the scene-parsing release.
APOLLO_CAMERAS = ("Camera 5", "Camera 6")


def label_candidates(label_dir: Path, stem: str) -> tuple[Path, Path]:
    """The two names a label of image ``<stem>.jpg`` has in the release, in preference order."""
    return label_dir / f"{stem}.png", label_dir / f"{stem}_bin.png"


@register_dataset
class ApolloScape(SegmentationDataset):
    name = "apolloscape"
    taxonomy_name = "apolloscape"
    splits = ("all", "train", "val", "test")
    layout = (
        "road0X_{ins,seg}/ColorImage/Record<n>/Camera {5,6}/<stamp>_Camera_{5,6}.jpg + "
        "road0X_*/Label/Record<n>/Camera {5,6}/<stamp>_Camera_{5,6}[_bin].png; "
        "[lists/]road0X_ins_{split}.lst"
    )

    def list_pairs(self) -> list[FilePair]:
        if self.split == "all":
            return self._all_pairs()
        return self._listed_pairs()

    # ------------------------------------------------------------------ all
    def _all_pairs(self) -> list[FilePair]:
        roads = sorted(
            p for p in self.root.glob("road*") if p.is_dir() and (p / "ColorImage").is_dir()
        )
        if not roads:
            raise DatasetError(
                f"{self.root}: no ApolloScape road folder with ColorImage/ found "
                f"(expected layout: {self.layout})"
            )
        pairs: list[FilePair] = []
        for road in roads:
            for record in sorted(p for p in (road / "ColorImage").iterdir() if p.is_dir()):
                for camera in APOLLO_CAMERAS:
                    image_dir = record / camera
                    if not image_dir.is_dir():
                        continue
                    label_dir = road / "Label" / record.name / camera
                    for image in sorted(image_dir.glob("*.jpg")):
                        pairs.append(self._pair(image, label_dir))
        return [p for p in pairs if p.label is not None]

    def _pair(self, image: Path, label_dir: Path) -> FilePair:
        candidates = label_candidates(label_dir, image.stem)
        label = next((c for c in candidates if c.exists()), None)
        if label is None:
            self.missing_label(image, candidates[0])
        return FilePair(image, label)

    # ------------------------------------------------------------------ list files
    def list_files(self) -> list[Path]:
        """The split's ``road*_<split>.lst`` files (root first, then ``lists/``), by name."""
        found: dict[str, Path] = {}
        for folder in (self.root, self.root / "lists"):
            if not folder.is_dir():
                continue
            for path in folder.glob(f"road*_{self.split}.lst"):
                if path.is_file():
                    found.setdefault(path.name, path)
        return [found[name] for name in sorted(found)]

    def _listed_pairs(self) -> list[FilePair]:
        files = self.list_files()
        if not files:
            raise DatasetError(
                f"{self.root}: no ApolloScape list file road*_{self.split}.lst in the root or "
                f"in {self.root / 'lists'} (split 'all' reads every record folder; expected "
                f"layout: {self.layout})"
            )
        pairs: list[FilePair] = []
        for list_file in files:
            try:
                text = list_file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise DatasetError(
                    f"{list_file}: cannot read ApolloScape list file: {exc}"
                ) from None
            for lineno, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                fields = [f.strip() for f in line.split("\t") if f.strip()]
                if len(fields) > 2:
                    raise DatasetError(
                        f"{list_file}:{lineno}: expected '<image path>\\t<label path>' "
                        f"(tab-separated; paths contain spaces), got {len(fields)} fields"
                    )
                image = self.root / fields[0].lstrip("/")
                if len(fields) == 1:
                    pairs.append(FilePair(image, None))
                    continue
                listed = self.root / fields[1].lstrip("/")
                label = self._listed_label(listed)
                if label is None:
                    self.missing_label(image, listed)
                    continue
                pairs.append(FilePair(image, label))
        return pairs

    @staticmethod
    def _listed_label(listed: Path) -> Path | None:
        """``listed`` if it exists, else its other release name (``_bin.png`` or not)."""
        if listed.exists():
            return listed
        name = listed.name
        if name.endswith("_bin.png"):
            other = listed.with_name(name[: -len("_bin.png")] + ".png")
        elif name.endswith(".png"):
            other = listed.with_name(name[: -len(".png")] + "_bin.png")
        else:
            return None
        return other if other.exists() else None
