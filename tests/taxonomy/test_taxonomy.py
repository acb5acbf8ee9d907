"""Built-in taxonomies load and hold the published facts; taxonomy validation names file
and line; raw-id / colour conversions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labelbridge.cli.app import main
from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import TaxonomyError
from labelbridge.taxonomy import Taxonomy, list_taxonomies, load_taxonomy
from labelbridge.yamlio import load_yaml_text

ALL = list_taxonomies()

EXPECTED_COUNTS = {  # name: (classes in the file, train classes)
    "a2d2": (55, 55),
    "apolloscape": (36, 30),
    "bdd100k": (20, 19),
    "camvid11": (12, 11),
    "camvid32": (32, 31),
    "cityscapes": (34, 19),
    "coco_panoptic": (134, 133),
    "freiburg_forest": (7, 6),
    "god": (22, 21),
    "goose": (64, 60),
    "idd_labelids": (40, 35),
    "idd_level1": (8, 7),
    "idd_level3": (27, 26),
    "kitti": (34, 19),
    "makassar": (4, 3),
    "mapillary_vistas_v1_2": (66, 63),
    "master20": (21, 20),
    "mseg_universal": (195, 194),
    "nuimages": (26, 25),
    "offroad": (35, 34),
    "rellis3d": (20, 19),
    "rugd": (25, 24),
    "tas500": (24, 23),
    "waymo2d": (29, 28),
    "wilddash2": (81, 67),
    "wildscenes": (19, 18),
    "ycor": (9, 8),
}


def test_builtin_list_is_complete() -> None:
    assert sorted(EXPECTED_COUNTS) == ALL
    assert len(ALL) >= 19


@pytest.mark.parametrize("name", ALL)
def test_builtin_loads_with_unique_names_and_ids(name: str) -> None:
    tax = load_taxonomy(name)
    assert tax.name == name
    names = [c.name for c in tax.classes]
    ids = [c.id for c in tax.classes]
    assert len(set(names)) == len(names)
    assert len({n.lower() for n in names}) == len(names), "names must differ beyond case"
    assert len(set(ids)) == len(ids)
    assert (len(tax.classes), tax.num_classes) == EXPECTED_COUNTS[name]
    assert sorted(c.train_id for c in tax.train_classes) == list(range(tax.num_classes))
    assert tax.source.strip(), "every built-in cites its source"


@pytest.mark.parametrize("name", [n for n in ALL if load_taxonomy(n).label_format == "color"])
def test_colour_coded_taxonomies_have_unique_colours(name: str) -> None:
    tax = load_taxonomy(name)
    colours = [c.color for c in tax.classes]
    assert len(set(colours)) == len(colours)
    # every class colour decodes to its own id
    rgb = np.array([colours], dtype=np.uint8)
    assert tax.colors_to_ids(rgb)[0].tolist() == [c.id for c in tax.classes]


def test_published_facts() -> None:
    cs = load_taxonomy("cityscapes")
    assert cs.train_names[:3] == ["road", "sidewalk", "building"]
    assert cs.get("bicycle").id == 33 and cs.get("bicycle").train_id == 18
    kitti = load_taxonomy("kitti")
    assert [(c.id, c.name, c.train_id) for c in kitti.classes] == [
        (c.id, c.name, c.train_id) for c in cs.classes
    ]
    assert load_taxonomy("bdd100k").train_names == cs.train_names
    mvd = load_taxonomy("mapillary_vistas_v1_2")
    assert mvd.by_id(65).name == "Unlabeled" and mvd.by_id(65).ignore
    assert mvd.by_id(13).name == "Road" and mvd.by_id(13).color == (128, 64, 128)
    # the paper's 63 evaluated classes: Car Mount and Ego Vehicle ignored, train ids = ids
    assert mvd.get("Ego Vehicle").ignore and mvd.num_classes == 63
    assert mvd.get("construction--flat--road").name == "Road"  # official name, an alias
    assert mvd.train_id_of("nature--sky") == 27 and mvd.get("Sky").id == 27
    coco = load_taxonomy("coco_panoptic")
    assert coco.get("person").id == 1 and coco.get("rug-merged").id == 200
    assert coco.train_names.index("banner") == 80  # 80 things, then the stuff classes
    rellis = load_taxonomy("rellis3d")
    assert [c.id for c in rellis.classes] == [
        0,
        1,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        12,
        15,
        17,
        18,
        19,
        23,
        27,
        31,
        33,
        34,
    ]
    assert rellis.get("rubble").train_id == 18
    assert load_taxonomy("nuimages").get("vehicle.ego").id == 31
    assert load_taxonomy("waymo2d").by_id(28).name == "static"
    idd3 = load_taxonomy("idd_level3")
    assert idd3.by_id(8).name == "autorickshaw" and idd3.by_id(255).ignore
    assert load_taxonomy("apolloscape").get("car_groups").id == 161


def test_ycor_palette_matches_real_labels(ycor_root) -> None:
    from PIL import Image

    label = sorted((ycor_root / "train").glob("*/labels.png"))[0]
    palette = Image.open(label).getpalette()
    tax = load_taxonomy("ycor")
    for c in tax.classes:
        assert tuple(palette[3 * c.id : 3 * c.id + 3]) == c.color


def test_camvid_and_idd_lite_ids_cover_real_labels(camvid_root, idd_lite_root) -> None:
    from PIL import Image

    camvid = load_taxonomy("camvid11")
    for p in sorted((camvid_root / "trainannot").glob("*.png"))[:3]:
        assert camvid.unknown_ids(np.array(Image.open(p))) == []
    idd = load_taxonomy("idd_level1")
    for p in sorted((idd_lite_root / "gtFine" / "train").rglob("*_label.png"))[:3]:
        assert idd.unknown_ids(np.array(Image.open(p))) == []


# ---------------------------------------------------------------- conversions
def test_to_train_ids_hand_computed() -> None:
    cs = load_taxonomy("cityscapes")
    raw = np.array([[7, 8, 0], [33, 26, 10]])
    out = cs.to_train_ids(raw)
    assert out.tolist() == [[0, 1, IGNORE_INDEX], [18, 13, IGNORE_INDEX]]
    with pytest.raises(ValueError, match="99"):
        cs.to_train_ids(np.array([[99]]))


def test_colors_to_ids_hand_computed() -> None:
    rugd = load_taxonomy("rugd")
    rgb = np.array([[[108, 64, 20], [0, 0, 255]], [[0, 0, 0], [114, 85, 47]]], dtype=np.uint8)
    assert rugd.colors_to_ids(rgb).tolist() == [[1, 7], [0, 24]]
    with pytest.raises(ValueError, match="palette"):
        rugd.colors_to_ids(np.array([[[1, 2, 3]]], dtype=np.uint8))


# ---------------------------------------------------------------- validation messages
def _load_text(text: str) -> Taxonomy:
    doc = load_yaml_text(text, "tax.yaml")
    return Taxonomy.from_dict(doc.data, where=doc, origin="tax.yaml")


GOOD = """name: t
classes:
  - {id: 0, name: a, color: [1, 2, 3]}
  - {id: 1, name: b, color: [4, 5, 6]}
  - {id: 255, name: void, ignore: true}
"""


def test_valid_text_loads() -> None:
    tax = _load_text(GOOD)
    assert tax.train_names == ["a", "b"] and tax.ignore_ids == [255]


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("name: b,", "name: a,", "tax.yaml:4: duplicate class name 'a'"),
        ("id: 1,", "id: 0,", "tax.yaml:4: duplicate class id 0"),
        ("color: [4, 5, 6]", "color: [4, 5, 600]", "tax.yaml:4: colour of 'b'"),
        ("name: t", "name: t\ncolour: x", "tax.yaml:2: unknown key 'colour'"),
        ("{id: 1, name: b,", "{id: 1, nme: b, name: b,", "tax.yaml:4: unknown key(s) ['nme']"),
    ],
)
def test_taxonomy_errors_name_file_and_line(old: str, new: str, needle: str) -> None:
    with pytest.raises(TaxonomyError) as err:
        _load_text(GOOD.replace(old, new, 1))
    assert needle in str(err.value)


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(TaxonomyError, match="Did you mean 'sidewalk'"):
        load_taxonomy("cityscapes").get("sidewalkk")


# ---------------------------------------------------------------- CLI
def test_cli_taxonomies_json(capsys) -> None:
    main(["taxonomies", "--json", "--mappings"])
    out = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in out["taxonomies"]}
    assert len(rows) >= 19
    assert (
        rows["mapillary_vistas_v1_2"]["classes"] == 66
        and rows["mapillary_vistas_v1_2"]["train_classes"] == 63
    )
    assert "idd_level1_to_camvid11" in out["mappings"]


def test_equality_is_decided_by_what_the_ids_mean() -> None:
    """One rule per id space: train ids (model outputs, pseudo-labels, a mapping's source
    side) compare train class names in order; raw labels read through a mapping compare
    every class. A taxonomy's own name never decides."""
    camvid = load_taxonomy("camvid11")
    data = camvid.to_dict()
    renamed = Taxonomy.from_dict({**data, "name": "camvid_copy"})
    assert renamed.same_train_space(camvid) and renamed.same_label_space(camvid)
    shifted = Taxonomy.from_dict(
        {
            **data,
            "name": "camvid_shifted",
            "classes": [
                {**c, "id": c["id"] + 100} if not c.get("ignore") else c for c in data["classes"]
            ],
        }
    )
    assert shifted.same_train_space(camvid) and not shifted.same_label_space(camvid)
    reordered = Taxonomy.from_dict(
        {
            **data,
            "classes": [
                {**c, "train_id": camvid.num_classes - 1 - c["train_id"]}
                if not c.get("ignore")
                else c
                for c in data["classes"]
            ],
        }
    )
    assert not reordered.same_train_space(camvid) and not reordered.same_label_space(camvid)
    assert not load_taxonomy("cityscapes").same_train_space(camvid)
