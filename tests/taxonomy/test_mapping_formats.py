"""Mapping tables (reference CSV, MSeg-style TSV) and YAML: round trips on random
taxonomies and mappings (hypothesis), the loader on random valid and corrupted files,
hand-written tables in both layouts, and ``ontology convert``."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelbridge.cli.app import main
from labelbridge.errors import OntologyError, UserError
from labelbridge.taxonomy import IGNORE_ROW, UNLABELLED_POLICIES, Ontology, Taxonomy, load_ontology
from labelbridge.taxonomy.formats import (
    ontology_from_csv,
    ontology_from_tsv,
    ontology_to_csv,
    ontology_to_tsv,
    ontology_to_yaml,
    read_ontology,
)
from labelbridge.yamlio import load_yaml_text

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RESERVED = {"ignore", "void", "unlabeled", "unlabelled"}
NAME = (
    st.text(alphabet=string.ascii_letters + string.digits + " -_./", min_size=1, max_size=8)
    .map(str.strip)
    .filter(lambda s: bool(s) and s.lower() not in RESERVED)
)


@st.composite
def taxonomies(draw: st.DrawFn, name: str) -> Taxonomy:
    n_train = draw(st.integers(1, 6))
    n_ignored = draw(st.integers(0, 2))
    total = n_train + n_ignored
    names = draw(st.lists(NAME, min_size=total, max_size=total, unique_by=str.lower))
    ids = draw(st.lists(st.integers(0, 300), min_size=total, max_size=total, unique=True))
    classes = [
        {"id": i, "name": n, "color": [k % 256, 0, 0], **({"ignore": True} if k >= n_train else {})}
        for k, (i, n) in enumerate(zip(ids, names, strict=True))
    ]
    order = draw(st.permutations(range(total)))
    return Taxonomy.from_dict({"name": name, "classes": [classes[k] for k in order]})


@st.composite
def ontologies(draw: st.DrawFn) -> Ontology:
    src = draw(taxonomies("src"))
    ext = draw(taxonomies("ext"))
    policy = draw(st.sampled_from(UNLABELLED_POLICIES))
    row = st.one_of(
        st.just(IGNORE_ROW), st.lists(st.sampled_from(src.train_names), min_size=1, unique=True)
    )
    rows: dict = {c.name: draw(row) for c in ext.train_classes}
    if policy == "constrained":
        rows.update({c.name: draw(row) for c in ext.classes if c.ignore})
    owners: dict[str, list[str]] = {}
    for c in ext.train_classes:
        if isinstance(rows[c.name], list):
            for s in rows[c.name]:
                owners.setdefault(s, []).append(c.name)
    projection = {
        s: draw(st.sampled_from([*o, IGNORE_ROW])) for s, o in owners.items() if len(o) > 1
    }
    data = {"source": "src", "extra": "ext", "unlabelled": policy, "mapping": rows}
    if projection:
        data["projection"] = projection
    return Ontology.from_dict(data, source=src, extra=ext)


# ---------------------------------------------------------------- round trips
@SETTINGS
@given(ontologies())
def test_csv_round_trip(onto: Ontology) -> None:
    back = ontology_from_csv(ontology_to_csv(onto), source=onto.source, extra=onto.extra)
    assert back.same_as(onto)
    assert back.unlabelled == onto.unlabelled
    plain = ontology_from_csv(
        ontology_to_csv(onto, metadata=False),
        source=onto.source,
        extra=onto.extra,
        unlabelled=onto.unlabelled,
        projection=onto.projection_overrides,
    )
    assert plain.same_as(onto)


@SETTINGS
@given(ontologies())
def test_tsv_round_trip(onto: Ontology) -> None:
    back = ontology_from_tsv(ontology_to_tsv(onto), source=onto.source, extra=onto.extra)
    assert back.same_as(onto)
    plain = ontology_from_tsv(
        ontology_to_tsv(onto, metadata=False),
        source=onto.source,
        extra=onto.extra,
        unlabelled=onto.unlabelled,
        projection=onto.projection_overrides,
    )
    assert plain.same_as(onto)


@SETTINGS
@given(ontologies())
def test_yaml_round_trip(onto: Ontology) -> None:
    doc = load_yaml_text(ontology_to_yaml(onto), "rt.yaml")
    back = Ontology.from_dict(doc.data, where=doc, source=onto.source, extra=onto.extra)
    assert back.same_as(onto)
    assert back.rows == onto.rows


@pytest.mark.parametrize(
    "name", ["camvid11_to_cityscapes", "idd_level1_to_cityscapes", "idd_level1_to_camvid11"]
)
def test_builtin_round_trips_through_files(name: str, tmp_path: Path) -> None:
    onto = load_ontology(name)
    for fmt in ("csv", "tsv"):
        path = tmp_path / f"m.{fmt}"
        path.write_text(ontology_to_csv(onto) if fmt == "csv" else ontology_to_tsv(onto))
        assert read_ontology(path).same_as(onto)  # taxonomy names come from the metadata


# ---------------------------------------------------------------- loader on random YAML text
def _yaml_text(onto: Ontology) -> tuple[str, dict[str, int]]:
    """Hand-written YAML, one row per line; returns the text and each row's line."""
    lines = ["source: src", "extra: ext", f"unlabelled: {onto.unlabelled}", "mapping:"]
    where: dict[str, int] = {}
    for key, value in onto.rows.items():
        where[key] = len(lines) + 1
        lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    if onto.projection_overrides:
        lines.append("projection:")
        lines += [
            f"  {json.dumps(s)}: {json.dumps(e)}" for s, e in onto.projection_overrides.items()
        ]
    return "\n".join(lines) + "\n", where


def _load(text: str, onto: Ontology) -> Ontology:
    doc = load_yaml_text(text, "map.yaml")
    return Ontology.from_dict(
        doc.data, where=doc, origin="map.yaml", source=onto.source, extra=onto.extra
    )


@SETTINGS
@given(ontologies())
def test_random_valid_mapping_allowed_equals_rows(onto: Ontology) -> None:
    text, _ = _yaml_text(onto)
    loaded = _load(text, onto)
    assert loaded.same_as(onto)
    for c in onto.extra.classes:
        row = onto.rows.get(c.name)
        if c.ignore and onto.unlabelled == "unconstrained":
            expected = set(onto.source.train_names)
        elif (c.ignore and onto.unlabelled == "ignore") or row in (None, IGNORE_ROW):
            expected = set()
        else:
            expected = set(row)
        got = {onto.source.train_names[k] for k in np.flatnonzero(loaded.allowed[c.id])}
        assert got == expected


@SETTINGS
@given(ontologies(), st.data())
def test_random_corruptions_name_file_line_and_name(onto: Ontology, data: st.DataObject) -> None:
    text, where = _yaml_text(onto)
    lines = text.splitlines()
    list_rows = [k for k, v in onto.rows.items() if isinstance(v, list)]
    kinds = ["unknown_extra", "duplicate"] + (["unknown_source", "empty"] if list_rows else [])
    kinds += ["missing"] if onto.extra.train_classes else []
    kind = data.draw(st.sampled_from(kinds))
    if kind in ("unknown_source", "empty"):
        key = data.draw(st.sampled_from(list_rows))
        value = ["zz_unknown", *onto.rows[key][1:]] if kind == "unknown_source" else []
        lines[where[key] - 1] = f"  {json.dumps(key)}: {json.dumps(value)}"
        needles = [
            f"map.yaml:{where[key]}:",
            "zz_unknown" if kind == "unknown_source" else repr(key),
        ]
    elif kind == "unknown_extra":
        key = data.draw(st.sampled_from(list(onto.rows)))
        lines[where[key] - 1] = f"  {json.dumps('zz_nolabel')}: {json.dumps(onto.rows[key])}"
        needles = [f"map.yaml:{where[key]}:", "zz_nolabel"]
    elif kind == "duplicate":
        key = data.draw(st.sampled_from(list(onto.rows)))
        lines.insert(where[key], lines[where[key] - 1])
        needles = [f"map.yaml:{where[key] + 1}:", "duplicate key", repr(key)]
    else:  # missing: drop the row of a non-ignored extra label
        key = data.draw(st.sampled_from([c.name for c in onto.extra.train_classes]))
        del lines[where[key] - 1]
        needles = ["map.yaml:4:", repr(key), "not covered"]
    with pytest.raises(UserError) as err:  # OntologyError is a UserError
        _load("\n".join(lines) + "\n", onto)
    for needle in needles:
        assert needle in str(err.value), (kind, str(err.value))


# ---------------------------------------------------------------- hand-written tables
REFERENCE_CSV = """,name,,,
0,Sky,Sky,,
1,Building,Building,Void,
2,Pole,Column_Pole,,
3,Road,Road,LaneMkgsDriv,Void
4,Pavement,Sidewalk,,
5,Tree,Tree,VegetationMisc,
6,SignSymbol,SignSymbol,TrafficLight,Misc_Text
7,Fence,Fence,,
8,Car,Car,SUVPickupTruck,Truck_Bus
9,Pedestrian,Pedestrian,Child,
10,Bicyclist,Bicyclist,MotorcycleScooter,
255,void,Animal,Archway,Bridge,CartLuggagePram,LaneMkgsNonDriv,OtherMoving,ParkingBlock,RoadShoulder,TrafficCone,Train,Tunnel,Wall,Void
"""

REF_PROJECTION = {n: n for n in ("Road", "Tree", "SignSymbol", "Car", "Pedestrian", "Bicyclist")}


def test_reference_layout_csv_without_metadata() -> None:
    """camvid32 -> camvid11 written the way the reference files are (header row, ragged
    rows, a label under classes and void): the label keeps both (the void option), the
    policy is inferred."""
    onto = ontology_from_csv(
        REFERENCE_CSV,
        source="camvid11",
        extra="camvid32",
        projection=REF_PROJECTION,
        origin="ref.csv",
    )
    assert onto.unlabelled == "constrained"  # the ignored 'Void' is listed under classes
    assert onto.allowed_names("Void") == ["Building", "Road"]
    assert onto.void_allowed[onto.extra.get("Void").id]
    assert onto.rows["Void"] == ["Building", "Road", IGNORE_ROW]
    assert not onto.void_allowed[onto.extra.get("Child").id]
    assert onto.allowed_names("Wall") == [] and onto.allowed_names("Child") == ["Pedestrian"]
    assert any("keep both" in line and "'Void'" in line for line in onto.import_report)
    # camvid32 train ids (alphabetical, 'Void' skipped): Sky 21, Building 4, Column_Pole 8, ...
    assert onto.projection.tolist() == [21, 4, 8, 17, 19, 26, 20, 9, 5, 16, 2]
    assert ontology_from_csv(ontology_to_csv(onto), origin="again.csv").same_as(onto)


def test_mseg_style_tsv_with_more_columns() -> None:
    text = (
        "Parent Category\tcamvid32\tuniversal\tnote\n"
        "x\tSky\tSky\t\n"
        "x\t{Building, Wall, Archway}\tBuilding\tbraces\n"
        "x\tColumn_Pole\tPole\t\n"
        "x\t{Road, LaneMkgsDriv, RoadShoulder}\tRoad\t\n"
        "x\t{Sidewalk, ParkingBlock}\tPavement\t\n"
        "x\t{Tree, VegetationMisc}\tTree\t\n"
        "x\t{SignSymbol, TrafficLight}\tSignSymbol\t\n"
        "x\tFence\tFence\t\n"
        "x\t{Car, SUVPickupTruck, Truck_Bus, Train}\tCar\t\n"
        "x\t{Pedestrian, Child}\tPedestrian\t\n"
        "x\t{Bicyclist, MotorcycleScooter}\tBicyclist\t\n"
        "x\t{Animal, CartLuggagePram, LaneMkgsNonDriv, Misc_Text, OtherMoving, TrafficCone, Tunnel, Bridge}\tunlabeled\t\n"
    )
    names = [
        "Sky",
        "Building",
        "Road",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    ]
    projection = {**{n: n for n in names}, "Pole": "Column_Pole", "Pavement": "Sidewalk"}
    onto = ontology_from_tsv(
        text,
        source="camvid11",
        extra="camvid32",
        source_column="universal",
        projection=projection,
        origin="m.tsv",
    )
    assert onto.unlabelled == "ignore"
    assert onto.allowed_names("Wall") == ["Building"] and onto.allowed_names("Bridge") == []
    assert onto.projection[onto.source.train_id_of("Car")] == onto.extra.train_id_of("Car")


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        ("3,Road,Road", "3,Rood,Road", ["ref.csv:5:", "'Rood'"]),
        ("3,Road,Road", "4,Road,Road", ["ref.csv:5:", "train id 3", "says 4"]),
        ("5,Tree,Tree,", "5,Tree,Trea,", ["ref.csv:7:", "'Trea'", "unknown extra label"]),
        ("7,Fence,Fence,,\n", "", ["ref.csv:1:", "no row for the source classes ['Fence']"]),
        (
            "7,Fence,Fence,,",
            "7,Fence,Fence,,\n7,Fence,Fence,,",
            ["ref.csv:10:", "second row", "line 9"],
        ),
        ("0,Sky,Sky", "zero,Sky,Sky", ["ref.csv:2:", "'zero'"]),
    ],
)
def test_csv_errors_name_file_line_and_name(old: str, new: str, needles: list[str]) -> None:
    with pytest.raises(OntologyError) as err:
        ontology_from_csv(
            REFERENCE_CSV.replace(old, new, 1),
            source="camvid11",
            extra="camvid32",
            projection=REF_PROJECTION,
            origin="ref.csv",
            strict=True,
        )
    for needle in needles:
        assert needle in str(err.value), str(err.value)


def test_metadata_errors_and_conflicts() -> None:
    onto = load_ontology("camvid11_to_cityscapes")
    text = ontology_to_csv(onto)  # metadata in the header row
    with pytest.raises(OntologyError, match=r"m\.csv:1: the file says unlabelled 'unconstrained'"):
        ontology_from_csv(text, unlabelled="ignore", origin="m.csv")
    with pytest.raises(OntologyError, match=r"m\.csv:1: the file says source 'cityscapes'"):
        ontology_from_csv(text, source="camvid11", origin="m.csv")
    with pytest.raises(OntologyError, match=r"m\.csv:1: header cell 'unlabeled: x'"):
        ontology_from_csv(
            text.replace("unlabelled: ", "unlabeled: x,unlabelled: ", 1), origin="m.csv"
        )
    # the older comment-line metadata is still read, with its line numbers
    old = "# format: labelbridge-ontology-1\n# source: cityscapes\n# extra: camvid11\n"
    old += "# unlabelled: unconstrained\n" + ontology_to_csv(onto, metadata=False)
    with pytest.raises(OntologyError, match=r"m\.csv:4: the file says unlabelled"):
        ontology_from_csv(old, unlabelled="ignore", origin="m.csv")
    with pytest.raises(OntologyError, match=r"m\.csv:2: unknown metadata key 'unlabeled'"):
        ontology_from_csv(old.replace("# source:", "# unlabeled: x\n# source:"), origin="m.csv")
    plain = ontology_to_csv(onto, metadata=False)
    with pytest.raises(OntologyError, match="source taxonomy is not named"):
        ontology_from_csv(plain, origin="m.csv")
    # without a projection the rule chooses for the source classes several labels allow,
    # and says so: 'wall' is allowed by Building [building, wall] and Fence [fence, wall]
    # (two classes each, no name match: the lower train id, Building); 'terrain' by
    # Pavement and Tree (same size: Pavement, train id 4 < Tree 5)
    chosen = ontology_from_csv(
        plain, source="cityscapes", extra="camvid11", unlabelled="unconstrained", origin="m.csv"
    )
    assert chosen.projection_overrides == {"wall": "Building", "terrain": "Pavement"}
    assert any("chosen by the rule" in line for line in chosen.import_report)


def test_tsv_refuses_names_it_cannot_write() -> None:
    src = Taxonomy.from_dict({"name": "s", "classes": [{"id": 0, "name": "a"}]})
    ext = Taxonomy.from_dict({"name": "e", "classes": [{"id": 0, "name": "x, y"}]})
    onto = Ontology.from_dict(
        {"source": "s", "extra": "e", "mapping": {"x, y": ["a"]}}, source=src, extra=ext
    )
    with pytest.raises(OntologyError, match="'x, y' cannot be written"):
        ontology_to_tsv(onto)
    assert ontology_from_csv(ontology_to_csv(onto), source=src, extra=ext).same_as(
        onto
    )  # CSV quotes it


# ---------------------------------------------------------------- CLI convert
def test_cli_convert_chain(tmp_path: Path, capsys) -> None:
    csv_path, tsv_path, yaml_path = tmp_path / "m.csv", tmp_path / "m.tsv", tmp_path / "m.yaml"
    main(["ontology", "convert", "idd_level1_to_camvid11", str(csv_path)])
    assert (tmp_path / "labels.csv").is_file()  # the reference loader needs it
    main(["ontology", "convert", str(csv_path), str(tsv_path)])
    main(["ontology", "convert", str(tsv_path), str(yaml_path)])
    assert "wrote" in capsys.readouterr().out
    assert Ontology.from_file(yaml_path).same_as(load_ontology("idd_level1_to_camvid11"))
    plain = tmp_path / "plain.txt"
    main(
        [
            "ontology",
            "convert",
            "idd_level1_to_camvid11",
            str(plain),
            "--to",
            "csv",
            "--no-metadata",
        ]
    )
    assert plain.read_text().startswith(",name,")
    back = tmp_path / "back.yaml"
    proj = json.dumps(load_ontology("idd_level1_to_camvid11").projection_overrides)
    main(["ontology", "convert", str(plain), str(back), "--from", "csv", "--source", "camvid11",
          "--extra", "idd_level1", "--unlabelled", "ignore", "--projection", proj])  # fmt: skip
    assert Ontology.from_file(back).same_as(load_ontology("idd_level1_to_camvid11"))


def test_cli_convert_unknown_extension_exits_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ontology", "convert", "camvid11_to_cityscapes", str(tmp_path / "m.xlsx")])
    assert exc.value.code == 2
    assert "m.xlsx" in capsys.readouterr().err
