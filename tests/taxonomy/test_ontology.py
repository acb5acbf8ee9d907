"""Built-in mappings, hand-checked allowed matrices and projections, validation messages
(file, line, offending name), the ``ontology check`` / ``diff`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labelbridge.cli.app import main
from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import OntologyError, UserError
from labelbridge.taxonomy import Ontology, list_mappings, load_ontology, load_taxonomy
from labelbridge.taxonomy.diff import diff_ontologies
from labelbridge.yamlio import load_yaml_text

MAPPINGS = list_mappings()


@pytest.mark.parametrize("name", MAPPINGS)
def test_builtin_mapping_loads_and_cli_check_passes(name: str, capsys) -> None:
    onto = load_ontology(name)
    assert onto.allowed.shape == (len(onto.extra.lut), onto.source.num_classes)
    main(["ontology", "check", name])
    assert capsys.readouterr().out.startswith("OK ")


def test_required_builtins_present() -> None:
    for name in (
        "camvid11_to_cityscapes",
        "idd_level1_to_cityscapes",
        "idd_level1_to_camvid11",
        "kitti_to_cityscapes",
    ):
        assert name in MAPPINGS


# ---------------------------------------------------------------- camvid11 -> cityscapes, by hand
# Cityscapes train ids: road 0, sidewalk 1, building 2, wall 3, fence 4, pole 5, traffic light 6,
# traffic sign 7, vegetation 8, terrain 9, sky 10, person 11, rider 12, car 13, truck 14, bus 15,
# train 16, motorcycle 17, bicycle 18.  CamVid raw id -> allowed Cityscapes train ids:
CAMVID_ALLOWED = {
    0: {10},
    1: {2, 3},
    2: {5},
    3: {0},
    4: {1, 9},
    5: {8, 9},
    6: {6, 7},
    7: {3, 4},
    8: {13, 14, 15, 16},
    9: {11},
    10: {12, 17, 18},
    11: set(range(19)),  # Unlabelled, 'unlabelled: unconstrained'
    255: set(range(19)),  # no class has id 255: files may carry it as "no label"
}


def test_camvid11_to_cityscapes_allowed_matrix_by_hand() -> None:
    onto = load_ontology("camvid11_to_cityscapes")
    assert onto.allowed.shape == (256, 19)
    for e in range(256):
        assert set(np.flatnonzero(onto.allowed[e]).tolist()) == CAMVID_ALLOWED.get(e, set()), e


def test_camvid11_to_cityscapes_projection_by_hand() -> None:
    onto = load_ontology("camvid11_to_cityscapes")
    # CamVid train ids = raw ids: Sky 0 Building 1 Pole 2 Road 3 Pavement 4 Tree 5 SignSymbol 6
    # Fence 7 Car 8 Pedestrian 9 Bicyclist 10
    expected = [3, 4, 1, 1, 7, 2, 6, 6, 5, 5, 0, 9, 10, 8, 8, 8, 8, 10, 10]
    assert onto.projection.tolist() == expected


def test_idd_level1_to_camvid11_projection_as_specified() -> None:
    onto = load_ontology("idd_level1_to_camvid11")
    proj = {
        s: onto.extra.train_names[int(e)]
        for s, e in zip(onto.source.train_names, onto.projection, strict=True)
    }
    assert proj == {
        "Sky": "sky",
        "Building": "far objects",
        "Tree": "far objects",
        "Pole": "road-side objects",
        "SignSymbol": "road-side objects",
        "Fence": "road-side objects",
        "Road": "drivable",
        "Pavement": "non-drivable",
        "Car": "vehicles",
        "Pedestrian": "living things",
        "Bicyclist": "living things",
    }
    assert onto.unlabelled == "ignore"
    assert not onto.allowed[255].any()  # IDD ignore pixels stay ignore
    assert onto.allowed_names("drivable") == ["Road"]


def test_idd_level1_to_cityscapes_projection_and_rows() -> None:
    onto = load_ontology("idd_level1_to_cityscapes")
    proj = {
        s: onto.extra.train_names[int(e)]
        for s, e in zip(onto.source.train_names, onto.projection, strict=True)
    }
    assert proj["terrain"] == "non-drivable" and proj["sidewalk"] == "non-drivable"
    assert proj["rider"] == "living things" and proj["motorcycle"] == "vehicles"
    assert proj["building"] == "far objects" and proj["traffic sign"] == "road-side objects"
    assert IGNORE_INDEX not in onto.projection.tolist()  # every Cityscapes class has a counterpart
    assert set(onto.allowed_names("living things")) == {"person", "rider"}


def test_kitti_to_cityscapes_is_identity() -> None:
    onto = load_ontology("kitti_to_cityscapes")
    kitti = onto.extra
    for c in kitti.train_classes:
        assert onto.allowed_names(c.name) == [c.name]
    assert onto.projection.tolist() == list(range(19))
    assert not onto.allowed[0].any()  # 'unlabeled' stays ignore


# ---------------------------------------------------------------- policies
TAX_SRC = """name: src
classes:
  - {id: 0, name: a}
  - {id: 1, name: b}
  - {id: 2, name: c}
"""
TAX_EXT = """name: ext
classes:
  - {id: 0, name: X}
  - {id: 1, name: Y}
  - {id: 7, name: Z}
  - {id: 9, name: void, ignore: true}
"""


@pytest.fixture()
def taxa(tmp_path: Path) -> Path:
    (tmp_path / "src.yaml").write_text(TAX_SRC)
    (tmp_path / "ext.yaml").write_text(TAX_EXT)
    return tmp_path


def _write(folder: Path, body: str) -> Path:
    path = folder / "map.yaml"
    path.write_text(body)
    return path


BASE = """source: src.yaml
extra: ext.yaml
unlabelled: ignore
mapping:
  X: [a, b]
  Y: [c]
  Z: ignore
"""


def test_policy_ignore_constrained_unconstrained(taxa: Path) -> None:
    onto = Ontology.from_file(_write(taxa, BASE))
    assert onto.allowed[[0, 1, 7, 9]].astype(int).tolist() == [
        [1, 1, 0],
        [0, 0, 1],
        [0, 0, 0],
        [0, 0, 0],
    ]
    assert onto.projection.tolist() == [0, 0, 1]  # a -> X, b -> X, c -> Y
    un = Ontology.from_file(
        _write(taxa, BASE.replace("unlabelled: ignore", "unlabelled: unconstrained"))
    )
    assert un.allowed[9].all() and un.allowed[255].all() and not un.allowed[7].any()
    con = Ontology.from_file(
        _write(
            taxa, BASE.replace("unlabelled: ignore", "unlabelled: constrained") + "  void: [b, c]\n"
        )
    )
    assert con.allowed[9].astype(int).tolist() == [0, 1, 1]


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        (
            "X: [a, b]",
            "X: [a, bb]",
            ["map.yaml:5:", "'bb'", "unknown source class"],
        ),  # misspelt source class
        (
            "Y: [c]",
            "Yy: [c]",
            ["map.yaml:6:", "'Yy'", "unknown extra label"],
        ),  # misspelt extra label
        ("  Y: [c]\n", "", ["map.yaml:4:", "not covered", "'Y'"]),  # uncovered extra label
        ("Y: [c]", "Y: []", ["map.yaml:6:", "empty set", "'Y'"]),  # empty set
        ("Y: [c]", "Y: [c]\n  Y: [a]", ["map.yaml:7:", "duplicate key 'Y'"]),  # duplicate key
        ("Y: [c]", "Y: 3", ["map.yaml:6:", "'Y'", "must be a list"]),  # wrong type
        ("Y: [c]", "Y: [c, 4]", ["map.yaml:6:", "must be strings", "4"]),  # wrong item type
        ("unlabelled: ignore", "unlabelled: ignored", ["map.yaml:3:", "'ignored'"]),  # bad policy
        ("Y: [c]", "Y: [c, c]", ["map.yaml:6:", "listed twice", "'c'"]),
        ("Z: ignore", "Z: ignore\n  void: [a]", ["map.yaml:8:", "'void'", "constrained"]),
    ],
)
def test_validation_messages_name_file_line_and_name(
    taxa: Path, old: str, new: str, needles: list[str]
) -> None:
    assert old in BASE
    path = _write(taxa, BASE.replace(old, new, 1))
    with pytest.raises(UserError) as err:
        Ontology.from_file(path)
    msg = str(err.value)
    assert str(path) in msg
    for needle in needles:
        assert needle in msg, msg


def test_ambiguous_projection_needs_override(taxa: Path) -> None:
    text = BASE.replace("Y: [c]", "Y: [c, a]")
    with pytest.raises(OntologyError, match="source class 'a' is allowed for several extra labels"):
        Ontology.from_file(_write(taxa, text))
    onto = Ontology.from_file(_write(taxa, text + "projection:\n  a: Y\n"))
    assert onto.projection.tolist() == [1, 0, 1]
    with pytest.raises(OntologyError, match=r"map\.yaml:9:.*'Q'"):
        Ontology.from_file(_write(taxa, text + "projection:\n  a: Q\n"))


def test_in_memory_rows_equal_yaml_rows(taxa: Path) -> None:
    doc = load_yaml_text(
        BASE.replace("src.yaml", str(taxa / "src.yaml")).replace("ext.yaml", str(taxa / "ext.yaml"))
    )
    onto = Ontology.from_dict(doc.data, where=doc)
    assert onto.rows == {"X": ["a", "b"], "Y": ["c"], "Z": "ignore"}


# ---------------------------------------------------------------- CLI: check / diff
def test_cli_check_misspelt_file_exits_2_naming_file_line_name(taxa: Path, capsys) -> None:
    path = _write(taxa, BASE.replace("X: [a, b]", "X: [a, bee]"))
    with pytest.raises(SystemExit) as exc:
        main(["ontology", "check", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}:5:" in err and "'bee'" in err


def test_cli_check_json(capsys) -> None:
    main(["ontology", "check", "idd_level1_to_camvid11", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] and out["rows"]["drivable"] == ["Road"]
    assert out["projection"]["Bicyclist"] == "living things"


def test_ontology_diff_reports_rows_policy_projection(taxa: Path) -> None:
    a = Ontology.from_file(_write(taxa, BASE))
    other = taxa / "b"
    other.mkdir()
    (other / "src.yaml").write_text(TAX_SRC)
    (other / "ext.yaml").write_text(TAX_EXT)
    b_text = (
        BASE.replace("X: [a, b]", "X: [a]")
        .replace("Z: ignore", "Z: [b]")
        .replace("ignore\nmapping", "x")
    )
    b_text = b_text.replace("unlabelled: x", "unlabelled: unconstrained\nmapping")
    b = Ontology.from_file(_write(other, b_text))
    diff = diff_ontologies(a, b).to_dict()
    assert diff["labels"]["X"] == {"added": [], "removed": ["b"]}
    assert diff["labels"]["Z"] == {"added": ["b"], "removed": []}
    assert diff["labels"]["void"] == {"added": ["a", "b", "c"], "removed": []}
    assert diff["unlabelled"] == {"a": "ignore", "b": "unconstrained"}
    assert diff["projection"] == {"b": {"a": "X", "b": "Z"}}
    assert not diff["identical"]
    assert diff_ontologies(a, a).identical


def test_cli_diff_exit_code(tmp_path: Path, capsys) -> None:
    onto = load_ontology("camvid11_to_cityscapes")
    text = (
        Path(onto.origin)
        .read_text()
        .replace("Pavement: [sidewalk, terrain]", "Pavement: [sidewalk]")
    )
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("source: cityscapes", "source: cityscapes"))
    main(["ontology", "diff", "camvid11_to_cityscapes", str(changed), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["labels"] == {"Pavement": {"added": [], "removed": ["terrain"]}}
    assert out["projection"] == {}
    with pytest.raises(SystemExit) as exc:
        main(["ontology", "diff", "camvid11_to_cityscapes", str(changed), "--exit-code"])
    assert exc.value.code == 1
    main(["ontology", "diff", "camvid11_to_cityscapes", "camvid11_to_cityscapes", "--exit-code"])
    assert "identical" in capsys.readouterr().out


def test_taxonomy_names_resolved_relative_to_mapping_file(taxa: Path) -> None:
    onto = load_ontology(_write(taxa, BASE))
    assert onto.source.name == "src" and onto.extra.name == "ext"
    assert load_taxonomy(taxa / "ext.yaml").ignore_ids == [9]
