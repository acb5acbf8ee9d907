"""Names of the urban datasets as other files spell them: taxonomy aliases (the paper's
reference folder names), class aliases, groups and loose matching, on the built-in files.

The last tests read the paper's reference mapping files where they are present
(``../shared/reference``) and skip otherwise.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from labelbridge.errors import TaxonomyError
from labelbridge.taxonomy import load_ontology, load_taxonomy
from labelbridge.taxonomy.registry import builtin_taxonomy_name, list_taxonomies
from labelbridge.taxonomy.taxonomy import normalize_name

REFERENCE = Path(__file__).parents[2] / ".." / "shared" / "reference"
REFERENCE_DATASETS = REFERENCE / "data-priors" / "datasets"

#: reference folder (or source) name -> our built-in taxonomy
URBAN = {
    "ApolloScape": "apolloscape",
    "BDD": "bdd100k",
    "CamVid": "camvid32",
    "KITTI": "kitti",
    "a2d2": "a2d2",
    "cityscapes": "cityscapes",
    "coco": "coco_panoptic",
    "mapillary-vistas": "mapillary_vistas_v1_2",
    "nuimages": "nuimages",
    "road_lane_segmentation": "makassar",
    "waymo": "waymo2d",
    "wilddash": "wilddash2",
    "IDD": "idd_labelids",
}
SOURCES = {"cityscapes": "cityscapes", "mapillary": "mapillary_vistas_v1_2"}

#: (reference folder, file, cell): cells of the reference's files that name no label of
#: the dataset; each is a defect of the file or a label its own preparation invented.
KNOWN_DEFECTS = {
    # Cityscapes' 'license plate' has id -1 and never appears in the label PNGs
    # (cityscapesScripts labels.py); our cityscapes/kitti taxonomies leave it out.
    *{
        (ds, f, "license plate")
        for ds in ("cityscapes", "KITTI")
        for f in ("labels.csv", "master_labels_cityscapes.csv", "master_labels_mapillary.csv")
    },
    # the reference's id 0 for A2D2 pixels of no listed colour; A2D2 defines no such label
    *{
        ("a2d2", f, "void")
        for f in ("labels.csv", "master_labels_cityscapes.csv", "master_labels_mapillary.csv")
    },
    ("a2d2", "master_labels_mapillary.csv", "n"),  # stray cell in the rail-track row
    # 'tree-merged' and 'void' run together in the street-light row
    ("coco", "master_labels_mapillary.csv", "tree-mergedvoid"),
    ("wilddash", "master_labels_mapillary.csv", " "),  # blank cell in the terrain row
    # no label of IDD's toolkit (AutoNUE/public-code helpers/anue_labels.py)
    *{
        ("IDD", f, "ground")
        for f in ("labels.csv", "master_labels_cityscapes.csv", "master_labels_mapillary.csv")
    },
}


# ---------------------------------------------------------------- taxonomy aliases
@pytest.mark.parametrize(("folder", "name"), sorted({**URBAN, **SOURCES}.items()))
def test_reference_names_load_the_builtin(folder: str, name: str) -> None:
    assert builtin_taxonomy_name(folder) == name
    assert load_taxonomy(folder).name == name


def test_no_taxonomy_alias_is_claimed_twice() -> None:
    owner: dict[str, str] = {}
    for name in list_taxonomies():
        for key in {normalize_name(name), *map(normalize_name, load_taxonomy(name).aliases)}:
            assert owner.setdefault(key, name) == name, (key, owner[key], name)


def test_idd_is_the_label_id_level() -> None:
    idd = load_taxonomy("IDD")
    assert idd.name == "idd_labelids"
    assert len(idd.classes) == 40 and idd.num_classes == 35
    assert idd.by_id(27).name == "polegroup" and idd.by_id(26).name == "pole"
    assert idd.by_id(34).name == "fallback background" and not idd.by_id(34).ignore
    assert idd.by_id(36).name == "ego vehicle" and idd.by_id(36).ignore
    assert idd.by_id(11).color == (255, 204, 54)  # autorickshaw, anue_labels.py
    assert idd.get("void").name == "unlabeled"


# ---------------------------------------------------------------- class aliases, loose names
@pytest.mark.parametrize(
    ("taxonomy", "asked", "name", "kind"),
    [
        ("nuimages", "adult", "human.pedestrian.adult", "alias"),
        ("nuimages", "driveable_surface", "flat.driveable_surface", "alias"),
        ("nuimages", "unlabeled", "background", "alias"),
        ("apolloscape", "sidewalk", "siderwalk", "alias"),
        ("apolloscape", "vegetation", "vegatation", "alias"),
        ("makassar", "lane_mark_solid", "lm_solid", "alias"),
        ("makassar", "void", "background", "alias"),
        ("waymo2d", "traffic_sign", "sign", "alias"),
        ("bdd100k", "void", "unknown", "alias"),
        ("coco_panoptic", "Building-other-merged", "building-other-merged", "normalized"),
        ("coco_panoptic", "void", "unlabeled", "alias"),
        ("wilddash2", "overlay", "rectification border", "alias"),
        ("wilddash2", "trafficsignfront", "traffic sign", "alias"),
        ("wilddash2", "egovehicle", "ego vehicle", "normalized"),
        ("a2d2", "sidebar", "Sidebars", "alias"),
        ("mapillary_vistas_v1_2", "construction--flat--road", "Road", "alias"),
        ("mapillary_vistas_v1_2", "object--traffic-sign--front", "Traffic Sign (Front)", "alias"),
    ],
)
def test_other_spellings_resolve(taxonomy: str, asked: str, name: str, kind: str) -> None:
    match = load_taxonomy(taxonomy).lookup(asked)
    assert match.kind == kind and [c.name for c in match.classes] == [name]
    assert load_taxonomy(taxonomy).get(asked).name == name


# ---------------------------------------------------------------- groups (A2D2)
def test_a2d2_group_names_expand_to_the_instance_colours() -> None:
    a2d2 = load_taxonomy("a2d2")
    match = a2d2.lookup("car")
    assert match.kind == "group" and [c.id for c in match.classes] == [0, 1, 2, 3]
    assert [c.name for c in a2d2.lookup("motorcycle").classes] == [
        "Small vehicles 1",
        "Small vehicles 2",
        "Small vehicles 3",
    ]
    assert [c.id for c in a2d2.lookup("Traffic light").classes] == [17, 18, 19]  # loose
    with pytest.raises(TaxonomyError, match="group"):
        a2d2.get("car")


def test_a2d2_group_row_gives_every_member_the_same_classes() -> None:
    onto = load_ontology("a2d2_to_cityscapes")
    assert {tuple(onto.allowed_names(f"Car {i}")) for i in (1, 2, 3, 4)} == {("car",)}
    # the reference's 'motorcycle' row (A2D2's Small vehicles) may be rider or motorcycle
    assert {tuple(onto.allowed_names(f"Small vehicles {i}")) for i in (1, 2, 3)} == {
        ("rider", "motorcycle")
    }


# ---------------------------------------------------------------- Mapillary as the source
def test_mapillary_is_the_papers_63_class_source() -> None:
    mvd = load_taxonomy("mapillary")
    assert mvd.num_classes == 63 and len(mvd.classes) == 66
    assert [c.id for c in mvd.train_classes] == list(range(63))  # train id = label id
    assert mvd.train_id_of("animal--bird") == 0
    assert mvd.train_id_of("object--vehicle--wheeled-slow") == 62
    for official in ("void--car-mount", "void--ego-vehicle", "void--unlabeled"):
        assert mvd.get(official).ignore
    assert mvd.get("human--rider--other-rider").name == "Other Rider"


# ---------------------------------------------------------------- WildDash 2
def test_wilddash2_holds_the_81_panoptic_categories() -> None:
    wd = load_taxonomy("wilddash")
    assert [c.id for c in wd.classes] == list(range(81)) and wd.num_classes == 67
    assert wd.get("road").train_id == 1 and wd.get("road-marking").train_id == 24  # as before
    assert wd.by_id(52).name == "curb" and wd.get("curb").train_id == 38
    assert wd.by_id(80).name == "curbcut" and wd.get("curbcut").train_id == 66
    assert wd.get("autorickshaw").color == (0, 0, 137)
    assert wd.get("streetlight").name == "street-light"  # WD2 spelling, loosely


# ---------------------------------------------------------------- the reference's files
def _reference_cells(folder: str) -> list[tuple[str, str, str | None, str]]:
    """(file, name, source-row name or None, source id) for every name cell."""
    lists = REFERENCE_DATASETS / folder / "lists"
    out: list[tuple[str, str, str | None, str]] = []
    with open(lists / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in list(csv.reader(fh))[1:]:
            if len(row) > 1:
                out.append(("labels.csv", row[1], None, ""))
    for src in SOURCES:
        path = lists / f"master_labels_{src}.csv"
        with open(path, newline="", encoding="utf-8") as fh:
            for row in list(csv.reader(fh))[1:]:
                if not row or not row[0].strip():
                    continue
                out.append((path.name, row[1], row[1], row[0].strip()))
                out += [(path.name, cell, None, "") for cell in row[2:] if cell]
    return out


needs_reference = pytest.mark.skipif(
    not REFERENCE_DATASETS.is_dir(),
    reason=f"the paper's reference files are not at {REFERENCE_DATASETS.resolve()}",
)


@needs_reference
@pytest.mark.parametrize("folder", sorted(URBAN))
def test_every_reference_name_resolves(folder: str) -> None:
    extra = load_taxonomy(folder)
    unresolved, bad_source, defects_seen = [], [], set()
    for file, name, source_row, source_id in _reference_cells(folder):
        if source_row is not None:
            if source_id == "255":
                continue  # the 'void' row: not a source class
            src = load_taxonomy(file.removeprefix("master_labels_").removesuffix(".csv"))
            try:
                if src.get(source_row).train_id != int(source_id):
                    bad_source.append((file, source_row, source_id))
            except TaxonomyError:
                bad_source.append((file, source_row, source_id))
            continue
        if (folder, file, name) in KNOWN_DEFECTS:
            defects_seen.add((folder, file, name))
            continue
        try:
            extra.lookup(name)
        except TaxonomyError:
            unresolved.append((file, name))
    assert unresolved == [] and bad_source == []
    listed = {d for d in KNOWN_DEFECTS if d[0] == folder}
    assert defects_seen == listed, f"known defects no longer in the files: {listed - defects_seen}"


@needs_reference
def test_reference_mapillary_ids_are_our_train_ids() -> None:
    mvd = load_taxonomy("mapillary_vistas_v1_2")
    path = REFERENCE_DATASETS / "mapillary-vistas" / "lists" / "master_labels_mapillary.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in list(csv.reader(fh))[1:] if r and r[0].strip() != "255"]
    assert [int(r[0]) for r in rows] == list(range(63))
    assert [mvd.get(r[1]).train_id for r in rows] == list(range(63))
    assert [mvd.get(r[1]).name for r in rows] == mvd.train_names
