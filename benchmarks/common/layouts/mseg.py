"""Small files in MSeg's published TSV formats, written into a temporary folder.

MSeg (Lambert et al., CVPR 2020) keeps its taxonomy mappings in the repository
``mseg-dataset/mseg-api`` (formerly ``mseg/mseg-api``), folder
``mseg/class_remapping_files/``. The facts below were read there at commit
``2bd00ae8c224d94cbc7ff9b47fde6ae8420adc27`` (HEAD, 2024-01-06); ``MSeg_master.tsv``
last changed in ``64fa6ce2ffe3db673bd12f2029608c961a2f542f`` (2020-05-15), the
pairwise files and ``dataset_lists/*/*_names.txt`` in ``fd93c4e`` / ``45fe049`` /
``ee48d26`` (2020). Nothing is copied: the files are generated from the facts (column
names, class names, cell contents) written out here and from the built-in taxonomies.
``docs/mseg-format.md`` describes the formats in full.
"""

from __future__ import annotations

from pathlib import Path

from labelbridge.taxonomy import load_taxonomy

#: Commit of mseg-dataset/mseg-api at which the formats were read.
MSEG_API_COMMIT = "2bd00ae8c224d94cbc7ff9b47fde6ae8420adc27"
#: Commit that last changed ``mseg/class_remapping_files/MSeg_master.tsv``.
MSEG_MASTER_COMMIT = "64fa6ce2ffe3db673bd12f2029608c961a2f542f"

#: The 30 column names of ``MSeg_master.tsv``'s header row, in order.
MSEG_MASTER_HEADER = (
    "Parent Category",
    "mapillary-public65",
    "mapillary-public65-relabeled",
    "coco-panoptic-133",
    "coco-panoptic-133-relabeled",
    "ade20k-150",
    "ade20k-150-relabeled",
    "idd-39",
    "idd-39-relabeled",
    "cityscapes-34",
    "cityscapes-34-relabeled",
    "cityscapes-19",
    "cityscapes-19-relabeled",
    "bdd",
    "bdd-relabeled",
    "nyudepthv2-37",
    "scannet-37",
    "sunrgbd-37",
    "sunrgbd-37-relabeled",
    "universal",
    "WordNet 3.1 Synset",
    "Defn (Most of the meanings are derived from WordNet 3.1)",
    "Modification of WordNet Node",
    "test-nyudepthv2-37",
    "kitti-19",
    "voc2012",
    "scannet-20",
    "camvid-11",
    "wilddash-19",
    "pascal-context-60",
)

#: Cells of a few universal rows of ``MSeg_master.tsv`` (universal name -> {column: cell}),
#: as the real file has them, for the columns Parent Category, mapillary-public65,
#: cityscapes-34, cityscapes-19, bdd, kitti-19 and camvid-11 (others left empty). They
#: cover all 19 Cityscapes train classes, the ``unlabeled`` row, ``{a, b}`` cells, and two
#: rows whose cityscapes-19 cell is empty (``backpack``, ``rider_other``).
_CS = ("cityscapes-34", "cityscapes-19", "bdd", "kitti-19")


def _same(name: str) -> dict[str, str]:
    return {c: name for c in _CS}


MSEG_MASTER_ROWS: dict[str, dict[str, str]] = {
    "backpack": {"Parent Category": "accessory"},
    "building": {
        "Parent Category": "building-parent",
        "mapillary-public65": "{Building, Phone Booth}",
        **_same("building"),
        "camvid-11": "Building",
    },
    "road": {
        "Parent Category": "ground",
        "mapillary-public65": "{Pothole, Parking, Road, Bike Lane, Service Lane, "
        "Crosswalk - Plain, Lane Marking - General, Lane Marking - Crosswalk}",
        **_same("road"),
        "camvid-11": "Road",
    },
    "sidewalk_pavement": {
        "Parent Category": "ground",
        "mapillary-public65": "{Sidewalk, Curb, Curb Cut, Pedestrian Area}",
        **_same("sidewalk"),
        "camvid-11": "Sidewalk",
    },
    "terrain": {
        "Parent Category": "ground",
        "mapillary-public65": "{Terrain, Sand}",
        **_same("terrain"),
    },
    "person": {
        "Parent Category": "person-parent",
        "mapillary-public65": "Person",
        **_same("person"),
        "camvid-11": "Pedestrian",
    },
    "rider_other": {
        "Parent Category": "person-parent",
        "mapillary-public65": "Other Rider",
        "bdd": "rider",
        "kitti-19": "rider",
    },
    "bicyclist": {
        "Parent Category": "person-parent",
        "mapillary-public65": "Bicyclist",
        "cityscapes-34": "rider",
        "cityscapes-19": "rider",
        "kitti-19": "rider",
        "camvid-11": "Bicyclist",
    },
    "traffic_sign": {
        "Parent Category": "roadside-obj.",
        "mapillary-public65": "{Traffic Sign (Back), Traffic Sign (Front), Traffic Sign Frame}",
        **_same("traffic sign"),
        "camvid-11": "SignSymbol",
    },
    "traffic_light": {
        "Parent Category": "roadside-obj.",
        "mapillary-public65": "Traffic Light",
        **_same("traffic light"),
    },
    "sky": {"mapillary-public65": "Sky", **_same("sky"), "camvid-11": "Sky"},
    "pole": {
        "mapillary-public65": "{Utility Pole, Pole}",
        **_same("pole"),
        "cityscapes-34": "{pole, polegroup}",
        "camvid-11": "Column_Pole",
    },
    "fence": {
        "Parent Category": "structural",
        "mapillary-public65": "Fence",
        **_same("fence"),
        "camvid-11": "Fence",
    },
    "vegetation": {
        "Parent Category": "vegetation",
        "mapillary-public65": "Vegetation",
        **_same("vegetation"),
        "camvid-11": "Tree",
    },
    "bicycle": {
        "Parent Category": "vehicle",
        "mapillary-public65": "Bicycle",
        **_same("bicycle"),
        "camvid-11": "Bicyclist",
    },
    "car": {
        "Parent Category": "vehicle",
        "mapillary-public65": "{Car, Caravan}",
        **_same("car"),
        "cityscapes-34": "{car, caravan}",
        "camvid-11": "Car",
    },
    "motorcycle": {
        "Parent Category": "vehicle",
        "mapillary-public65": "Motorcycle",
        **_same("motorcycle"),
    },
    "bus": {"Parent Category": "vehicle", "mapillary-public65": "Bus", **_same("bus")},
    "train": {"Parent Category": "vehicle", "mapillary-public65": "On Rails", **_same("train")},
    "truck": {"Parent Category": "vehicle", "mapillary-public65": "Truck", **_same("truck")},
    "wall": {"Parent Category": "wall", "mapillary-public65": "Wall", **_same("wall")},
    "unlabeled": {
        "Parent Category": "unlabeled",
        "mapillary-public65": "{Ego Vehicle, Car Mount, Manhole, Catch Basin, Other Vehicle}",
        "cityscapes-34": "{unlabeled, ego vehicle, rectification border, out of roi, "
        "static, dynamic, ground, parking}",
    },
}


def universal_names() -> list[str]:
    """MSeg's universal class names in MSeg's order (ids 0..193), then ``unlabeled``,
    from the built-in ``mseg_universal`` taxonomy."""
    tax = load_taxonomy("mseg_universal")
    return [c.name for c in tax.classes]


def write_mseg_master_tsv(
    folder: Path, *, full: bool = True, name: str = "MSeg_master.tsv"
) -> Path:
    """Write an ``MSeg_master.tsv`` in the published layout; returns its path.

    Format facts (``mseg/class_remapping_files/MSeg_master.tsv`` in mseg-dataset/mseg-api,
    commit ``64fa6ce2ffe3db673bd12f2029608c961a2f542f``; read by
    ``mseg/taxonomy/taxonomy_converter.py`` with ``pandas.read_csv(sep="\\t",
    keep_default_na=False)`` and ``mseg/utils/tsv_utils.py`` with ``csv.DictReader``):

    * UTF-8, tab-separated, no quoting, **CRLF** line ends, **no line end after the last
      row**;
    * row 1 is the header, the 30 names of :data:`MSEG_MASTER_HEADER` (dataset columns
      such as ``cityscapes-19``, the ``universal`` column at index 19, WordNet notes);
    * then one row per universal class, every row padded to 30 cells. The real file has
      195 data rows: the 194 universal classes in id order (id = 0-based data-row index),
      then ``unlabeled`` (MSeg's ignore id 255; its Parent Category cell is also
      ``unlabeled``) listing each dataset's classes that MSeg maps to ignore;
    * a dataset cell holds nothing, one class name, or ``{a, b, ...}`` (split on commas,
      names stripped: MSeg's ``parse_entry``); names have no outer spaces.

    Args:
        folder: where to write (created if needed).
        full: all 195 universal rows (cells filled only for the rows in
            :data:`MSEG_MASTER_ROWS`, others empty), as an importer that needs a row per
            universal class expects; ``False``: only the rows of :data:`MSEG_MASTER_ROWS`,
            in MSeg's order.
        name: file name.
    """
    order = universal_names()
    unknown = set(MSEG_MASTER_ROWS) - set(order)
    assert not unknown, f"not MSeg universal names: {unknown}"
    names = order if full else [n for n in order if n in MSEG_MASTER_ROWS]
    u_col = MSEG_MASTER_HEADER.index("universal")
    lines = ["\t".join(MSEG_MASTER_HEADER)]
    for uname in names:
        cells = [""] * len(MSEG_MASTER_HEADER)
        for col, value in MSEG_MASTER_ROWS.get(uname, {}).items():
            cells[MSEG_MASTER_HEADER.index(col)] = value
        cells[u_col] = uname
        lines.append("\t".join(cells))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    return path


def write_mseg_pairwise_tsv(
    folder: Path,
    from_name: str,
    to_name: str,
    rows: list[tuple[str, str]],
    *,
    final_newline: bool = False,
) -> Path:
    """Write a pairwise remapping file ``<from>_to_<to>.tsv``; returns its path.

    Format facts (the 19 files ``mseg/class_remapping_files/*_to_*.tsv`` of
    mseg-dataset/mseg-api, commits ``fd93c4e`` / ``45fe049`` / ``ee48d26``; read by
    ``mseg/label_preparation/remap_dataset.py`` through
    ``mseg/utils/tsv_utils.py:read_label_mapping(label_from=<from>, label_to=<to>)``):

    * ASCII, two tab-separated columns, CRLF line ends; the files that map an original
      dataset to a reduced one (``cityscapes-34_to_cityscapes-19``, ``camvid-32_to_camvid-11``,
      ...) have no line end after the last row, the ``*_to_*-relabeled`` ones do;
    * header row: the two MSeg dataset names, ``<from>\\t<to>``;
    * one row per class of ``<from>`` (direction from -> to, many-to-one): its name, then
      the ``<to>`` class it becomes; ``unlabeled`` as target means ignore (255); the
      ``<from>`` column also has an ``unlabeled`` row (``unlabeled\\tunlabeled``) so 255
      stays 255. No ``{a, b}`` cells.
    """
    lines = [f"{from_name}\t{to_name}"] + [f"{a}\t{b}" for a, b in rows]
    text = "\r\n".join(lines) + ("\r\n" if final_newline else "")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{from_name}_to_{to_name}.tsv"
    path.write_bytes(text.encode("ascii"))
    return path


def write_cityscapes34_to_19_tsv(folder: Path) -> Path:
    """``cityscapes-34_to_cityscapes-19.tsv`` as MSeg publishes it: 34 rows in Cityscapes
    label-id order (MSeg's ``cityscapes-34_names.txt`` = ids 0..33 of cityscapesScripts),
    each class to itself if it has a trainId, else to ``unlabeled``; first row
    ``unlabeled\\tunlabeled``; no line end after the last row. Generated from the
    built-in ``cityscapes`` taxonomy (same rule, checked against mseg-api ``fd93c4e``).
    See :func:`write_mseg_pairwise_tsv` for the format."""
    cs = load_taxonomy("cityscapes")
    rows = [
        (c.name, "unlabeled" if c.ignore else c.name)
        for c in sorted(cs.classes, key=lambda c: c.id)
    ]
    return write_mseg_pairwise_tsv(folder, "cityscapes-34", "cityscapes-19", rows)


def write_mseg_names_txt(folder: Path, dataset: str, names: list[str]) -> Path:
    """MSeg's per-dataset class list ``<folder>/<dataset>/<dataset>_names.txt`` (mseg-api
    ``mseg/dataset_lists/<dataset>/<dataset>_names.txt``, commit ``fd93c4e``; read by
    ``mseg/utils/names_utils.py:load_class_names`` with ``np.genfromtxt(delimiter="\\n")``):
    one class name per line, the line number (from 0) is the id in MSeg's label PNGs of
    that dataset, ``255`` = unlabeled. The real files mix line ends (some CRLF, some LF);
    written here with CRLF and a final line end."""
    d = folder / dataset
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{dataset}_names.txt"
    path.write_bytes("".join(f"{n}\r\n" for n in names).encode("utf-8"))
    return path
