"""The off-road label world: the paper's GOOSE-based 34-class source taxonomy ('offroad'),
the older 20-class list ('master20'), WildScenes, GOD, the reference's dataset folder names
as taxonomy aliases, the hand-written RUGD -> offroad mapping, and (where the reference
implementation is checked out next to the repository) every name of the reference's
off-road CSVs resolving except the listed defects of those files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import TaxonomyError
from labelbridge.taxonomy import load_ontology, load_taxonomy
from labelbridge.taxonomy.registry import builtin_taxonomy_name

# data-priors master_labels_offroad.csv, columns 1-2 (train id = position)
OFFROAD = [
    "asphalt", "rough_drivable", "cobble", "sidewalk", "building", "wall", "fence", "pole",
    "traffic_light", "traffic_sign", "tree", "non_drivable_veg", "crops", "water",
    "high_grass", "low_grass", "guard_rail", "sky", "person", "rider", "car", "truck", "bus",
    "trailer", "caravan", "on_rails", "motorcycle", "bicycle", "road_marking", "bridge",
    "tunnel", "rock", "snow", "animal",
]  # fmt: skip
MASTER20 = [
    "drivable_city", "sidewalk", "building", "wall", "fence", "pole", "traffic_light",
    "traffic_sign", "non_drivable_veg", "drivable_veg", "sky", "person", "rider", "car",
    "truck", "bus", "on_rails", "motorcycle", "bicycle", "road_marking",
]  # fmt: skip

# reference folder -> our taxonomy
FOLDERS = {
    "goose2d": "goose",
    "rellis-3d": "rellis3d",
    "tas500": "tas500",
    "yamaha": "ycor",
    "freiburg-forest": "freiburg_forest",
    "rugd": "rugd",
    "WildScenes": "wildscenes",
    "god": "god",
}

# Cells of the reference's CSVs that name no label of the dataset (see the report / notes):
# GOOSE has no 'road' class; TAS500 has no puddle (the reference's labels.csv gives its
# 255 = undefined that name); WildScenes id 3 is 'mud' in every publisher source.
KNOWN_DEFECTS = {("goose2d", "road"), ("tas500", "puddle"), ("WildScenes", "puddle")}

REFERENCE = Path(__file__).parents[2] / ".." / "shared" / "reference" / "data-priors" / "datasets"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(),
    reason=f"reference implementation (data-priors) not checked out at {REFERENCE.resolve()}",
)


# ---------------------------------------------------------------- offroad / master20
def test_offroad_has_the_34_reference_classes_in_order() -> None:
    tax = load_taxonomy("offroad")
    assert tax.num_classes == 34
    assert tax.train_names == OFFROAD
    # ids are the train ids; 255 is the ignored void
    assert [(c.id, c.train_id) for c in tax.train_classes] == [(i, i) for i in range(34)]
    void = tax.by_id(255)
    assert void.name == "void" and void.ignore and void.train_id == IGNORE_INDEX
    # the paper's spellings (Fig. 3, Sec. III)
    assert tax.lookup("cobblestone").classes[0].train_id == 2
    assert tax.lookup("rough drivable surface").classes[0].name == "rough_drivable"
    assert tax.lookup("non-drivable vegetation").classes[0].train_id == 11
    assert tax.lookup("marking").classes[0].name == "road_marking"


def test_offroad_colours_are_goose_colours_where_the_class_exists_in_goose() -> None:
    off, goose = load_taxonomy("offroad"), load_taxonomy("goose")
    goose_names = {c.name for c in goose.classes}
    shared = [n for n in OFFROAD if n in goose_names]
    assert len(shared) == 31 and {"rough_drivable", "tree", "non_drivable_veg"}.isdisjoint(shared)
    for name in shared:
        assert off.get(name).color == goose.get(name).color, name
    assert off.get("asphalt").color == (255, 47, 128)
    colours = [c.color for c in off.train_classes]
    assert len(set(colours)) == len(colours)


def test_master20_is_the_older_20_class_list() -> None:
    tax = load_taxonomy("master_labels")
    assert tax.name == "master20"
    assert tax.train_names == MASTER20
    assert tax.by_id(255).ignore


# ---------------------------------------------------------------- aliases
@pytest.mark.parametrize(
    ("alias", "name"),
    [
        *FOLDERS.items(),
        ("greatoutdoors", "god"),
        ("WildScenes2d", "wildscenes"),
        ("master_labels_offroad", "offroad"),
        ("master_labels", "master20"),
        ("Freiburg_Forest", "freiburg_forest"),
        ("RELLIS-3D", "rellis3d"),
    ],
)
def test_reference_names_resolve_to_our_taxonomies(alias: str, name: str) -> None:
    assert load_taxonomy(alias).name == name
    assert builtin_taxonomy_name(alias) == name


def test_load_taxonomy_goose2d() -> None:
    assert load_taxonomy("goose2d").name == "goose"


def test_class_aliases_of_the_reference_spellings() -> None:
    cases = {
        "tas500": {"misc. veg": 8},
        "ycor": {"background": 0, "non_traversable_low_vegetation": 6, "rough_trail": 3},
        "freiburg_forest": {"road": 1, "tree": 6},
        "rugd": {"object": 9, "rock_bed": 14, "picnic_table": 24},
        "wildscenes": {
            "asphalt/concrete": 1, "otherterrain": 6, "treetrunk": 7, "foliage": 8,
            "construct": 11, "other-structure": 11, "obstacle": 16,
        },
        "god": {"tree": 4, "dry_grass": 35, "rough_trail": 36},
    }  # fmt: skip
    for tax_name, names in cases.items():
        tax = load_taxonomy(tax_name)
        for name, cid in names.items():
            assert [c.id for c in tax.lookup(name).classes] == [cid], (tax_name, name)


def test_wildscenes_and_god_published_ids() -> None:
    ws = load_taxonomy("wildscenes")
    assert [c.id for c in ws.classes] == list(range(19))
    assert ws.by_id(0).ignore and ws.by_id(3).name == "mud" and ws.by_id(18).name == "grass"
    assert ws.by_id(17).color == (0, 0, 128)
    with pytest.raises(TaxonomyError):
        ws.lookup("puddle")  # the reference's name for id 3; no such WildScenes class
    god = load_taxonomy("god")
    assert [c.id for c in god.classes] == [
        0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 17, 18, 19, 23, 27, 31, 33, 34, 35, 36,
    ]  # fmt: skip
    assert god.by_id(35).name == "mulch" and god.by_id(36).name == "gravel"
    # shares RELLIS-3D's ids and colours where the classes coincide
    rellis = load_taxonomy("rellis3d")
    for c in rellis.classes:
        g = god.lookup(c.name).classes[0]
        assert (g.id, g.color) == (c.id, c.color), c.name


def test_freiburg_tree_colour_decodes() -> None:
    ff = load_taxonomy("freiburg_forest")
    rgb = np.array([[[0, 60, 0], [170, 170, 170], [0, 0, 0]]], dtype=np.uint8)
    assert ff.colors_to_ids(rgb)[0].tolist() == [6, 1, 5]


# ---------------------------------------------------------------- rugd -> offroad
def test_rugd_to_offroad_mapping_by_hand() -> None:
    onto = load_ontology("rugd_to_offroad")
    rugd, off = onto.extra, onto.source
    assert (rugd.name, off.name) == ("rugd", "offroad")
    t = {n: i for i, n in enumerate(OFFROAD)}

    def allowed(label: str) -> set[int]:
        return set(np.flatnonzero(onto.allowed[rugd.get(label).id]).tolist())

    assert allowed("dirt") == allowed("gravel") == allowed("mulch") == {t["rough_drivable"]}
    assert allowed("grass") == {t["low_grass"], t["high_grass"]}
    assert allowed("bush") == {t["non_drivable_veg"], t["high_grass"]}  # as RELLIS-3D bush
    assert allowed("tree") == {t["tree"]}
    assert allowed("rock-bed") == {t["rough_drivable"], t["rock"]}
    assert allowed("concrete") == {t["asphalt"], t["sidewalk"]}
    assert allowed("vehicle") == {
        t[n] for n in ("car", "truck", "bus", "trailer", "caravan", "motorcycle")
    }
    assert (
        allowed("container/generic-object") == allowed("picnic-table") == allowed("void") == set()
    )
    # the void option ("or not an off-road class") on labels that hide such things
    void_opt = {c.name for c in rugd.classes if onto.void_allowed[c.id]}
    assert void_opt == {"vehicle", "log", "sign"}
    # projection for evaluation: each off-road class onto one RUGD label
    proj = onto.projection
    assert proj[t["rough_drivable"]] == rugd.get("dirt").train_id
    assert proj[t["high_grass"]] == rugd.get("grass").train_id
    assert proj[t["asphalt"]] == rugd.get("asphalt").train_id
    assert proj[t["snow"]] == IGNORE_INDEX  # no RUGD label allows it


# ---------------------------------------------------------------- against the reference files
def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return [r for r in list(csv.reader(fh))[1:] if r and r[0].strip()]


@needs_reference
@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_every_reference_label_name_resolves_except_known_defects(folder: str) -> None:
    tax = load_taxonomy(folder)
    assert tax.name == FOLDERS[folder]
    lists = REFERENCE / folder / "lists"
    names = {r[1] for r in _rows(lists / "labels.csv")}
    for path in sorted(lists.glob("master_labels*.csv")):
        names |= {n for r in _rows(path) for n in r[2:] if n}
    bad = set()
    for name in names:
        try:
            tax.lookup(name)
        except TaxonomyError:
            bad.add(name)
    assert bad == {n for f, n in KNOWN_DEFECTS if f == folder}


@needs_reference
def test_reference_labels_csv_ids_are_our_raw_ids() -> None:
    """Where the reference's labels.csv keeps the dataset's own ids (column 'id'), every name
    resolves to our class of that id -- except its known slips."""
    slips = {("tas500", "puddle"), ("WildScenes", "puddle"), ("rugd", "rock_bed", 21)}
    for folder in ("goose2d", "rellis-3d", "tas500", "rugd", "WildScenes", "god"):
        tax = load_taxonomy(folder)
        for row in _rows(REFERENCE / folder / "lists" / "labels.csv"):
            name, raw = row[1], int(row[2])
            if (folder, name) in slips or (folder, name, raw) in slips:
                continue
            assert tax.lookup(name).classes[0].id == raw, (folder, name, raw)


@needs_reference
def test_every_offroad_source_row_resolves_with_its_train_id() -> None:
    off = load_taxonomy("offroad")
    files = sorted(REFERENCE.glob("*/lists/master_labels_offroad.csv"))
    assert len(files) >= 10  # incl. cityscapes, coco, mapillary-vistas, goose2d
    for path in files:
        rows = _rows(path)
        ids = [int(r[0]) for r in rows]
        assert ids == [*range(34), 255], path
        for r in rows[:-1]:
            assert off.get(r[1]).train_id == int(r[0]), (path, r[1])
        assert rows[-1][1] == "void" and off.get("void").ignore


@needs_reference
def test_every_master_labels_source_row_resolves_in_master20() -> None:
    m20 = load_taxonomy("master_labels")
    files = sorted(REFERENCE.glob("*/lists/master_labels.csv"))
    assert files
    for path in files:
        for r in _rows(path):
            cls = m20.get(r[1])
            assert (cls.train_id if not cls.ignore else 255) == int(r[0]), (path, r[1])
