"""The reference's mapping files as they are: the void option on hand-made pixels, the
projection rule, taxonomies given by path, export the reference's own loader can read,
round trips of every built-in mapping, and (where ``../shared/reference`` exists) all of
its ``master_labels_<source>.csv`` files by path alone."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from labelbridge.cli.app import main
from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy import IGNORE_ROW, Ontology, Taxonomy, list_mappings, load_ontology
from labelbridge.taxonomy.formats import (
    labels_csv_text,
    ontology_from_csv,
    ontology_from_tsv,
    ontology_to_csv,
    read_ontology,
    reference_taxonomies,
    write_ontology,
)
from labelbridge.taxonomy.priors import allowed_tensor, apply_priors, void_tensor

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "data-priors"
REFERENCE_CSVS = sorted(
    p
    for src in ("cityscapes", "mapillary", "offroad")
    for p in (REFERENCE / "datasets").glob(f"*/lists/master_labels_{src}.csv")
)

SRC = Taxonomy.from_dict(
    {
        "name": "src4",
        "classes": [
            {"id": 0, "name": "sky"},
            {"id": 1, "name": "building"},
            {"id": 2, "name": "car"},
            {"id": 3, "name": "road"},
        ],
    }
)
EXT = Taxonomy.from_dict(
    {
        "name": "ext3",
        "classes": [
            {"id": 0, "name": "Void"},
            {"id": 1, "name": "Vehicle"},
            {"id": 2, "name": "Ground"},
        ],
    }
)


def _onto(void_row: list[str] | str) -> Ontology:
    return Ontology.from_dict(
        {
            "source": "src4",
            "extra": "ext3",
            "mapping": {"Void": void_row, "Vehicle": ["car"], "Ground": ["road"]},
        },
        source=SRC,
        extra=EXT,
    )


def _reference_parse(text: str, labels: list[str]) -> dict[str, list[str]]:
    """What the reference loader makes of a mapping CSV: it skips row 1, reads
    ``int(row[0])``, and maps each listed label name to the row names it appears in;
    labels of ``labels.csv`` it never meets become ``['void']``. (Behaviour of
    UniBwTAS/data-priors utils.py LabelMapper, re-stated here to test our export.)"""
    reader = csv.reader(io.StringIO(text))
    next(reader)
    found: dict[str, list[str]] = {}
    for row in reader:
        int(row[0])  # the reference crashes here on anything but an integer
        for name in row[2:]:
            if name:
                found.setdefault(name, []).append(row[1])
    return {label: found.get(label, ["void"]) for label in labels}


# ---------------------------------------------------------------- the void option, on pixels
def test_void_option_on_hand_made_pixels() -> None:
    """Four pixels, all labelled 'Void' (extra id 0), allowed {sky, building}:
    the teacher's argmax is sky / building / car / road. With the void option the first
    two keep the teacher's class and the last two (the teacher sees a class the label
    excludes) become ignore; without it every pixel is forced into the best allowed
    class."""
    probs = torch.tensor(
        [
            [0.70, 0.20, 0.05, 0.05],  # sky
            [0.10, 0.60, 0.20, 0.10],  # building
            [0.15, 0.25, 0.55, 0.05],  # car  -> excluded
            [0.30, 0.05, 0.05, 0.60],  # road -> excluded
        ]
    ).T.reshape(1, 4, 1, 4)
    gt = torch.zeros(1, 1, 4, dtype=torch.long)
    with_void = _onto(["sky", "building", IGNORE_ROW])
    without = _onto(["sky", "building"])
    assert with_void.void_allowed[:3].tolist() == [True, False, False]
    assert np.array_equal(with_void.allowed, without.allowed)
    assert not with_void.same_as(without)  # the void option is part of the meaning
    out = apply_priors(
        probs,
        gt,
        allowed_tensor(with_void.allowed),
        void_t=void_tensor(with_void.void_allowed),
    )
    assert out.labels.flatten().tolist() == [0, 1, IGNORE_INDEX, IGNORE_INDEX]
    assert out.confidence.flatten().tolist()[2:] == [0.0, 0.0]
    forced = apply_priors(probs, gt, allowed_tensor(without.allowed))
    assert void_tensor(without.void_allowed) is None
    assert forced.labels.flatten().tolist() == [0, 1, 1, 0]
    # rows without the option are untouched by it: a 'Vehicle' pixel the teacher calls sky
    vehicle = apply_priors(
        probs[..., :1],
        torch.ones(1, 1, 1, dtype=torch.long),
        allowed_tensor(with_void.allowed),
        void_t=void_tensor(with_void.void_allowed),
    )
    assert vehicle.labels.item() == 2


def test_void_option_in_the_reference_csv_round_trips() -> None:
    onto = _onto(["sky", "building", IGNORE_ROW])
    text = ontology_to_csv(onto, metadata=False)
    lines = text.splitlines()
    assert lines[1].startswith("0,sky,Void") and lines[2].startswith("1,building,Void")
    assert lines[-1].startswith("255,void,Void")
    back = ontology_from_csv(text, source=SRC, extra=EXT)
    assert back.same_as(onto) and back.rows["Void"] == ["sky", "building", IGNORE_ROW]
    # the reference reads the same thing: Void may be sky, building or void
    assert _reference_parse(text, EXT.train_names)["Void"] == ["sky", "building", "void"]


def test_yaml_row_forms() -> None:
    assert _onto([IGNORE_ROW]).rows["Void"] == IGNORE_ROW  # only 'ignore' = the row 'ignore'
    with pytest.raises(Exception, match="'ignore' listed twice"):
        _onto(["sky", IGNORE_ROW, IGNORE_ROW])


# ---------------------------------------------------------------- projection rule
def test_projection_rule_on_a_hand_made_table() -> None:
    """'car' is allowed by Vehicle [car] and by Void [sky, building, car]: the label
    with the fewest classes wins; 'sky' by Void and by Ground [road, sky] (same size 2
    vs 3: Ground)."""
    text = (
        ",name,,,\n0,sky,Void,Ground,\n1,building,Void,,\n2,car,Vehicle,Void,\n"
        "3,road,Ground,,\n255,void,,,\n"
    )
    onto = ontology_from_csv(text, source=SRC, extra=EXT, origin="rule.csv")
    assert onto.projection_overrides == {"sky": "Ground", "car": "Vehicle"}
    assert onto.projection.tolist() == [2, 0, 1, 2]  # building: only Void
    assert any("sky -> Ground" in line for line in onto.import_report)
    # given explicitly, the rule is not used
    mine = ontology_from_csv(text, source=SRC, extra=EXT, projection={"sky": "Void", "car": "Void"})
    assert mine.projection.tolist() == [0, 0, 0, 2] and not mine.import_report


def test_unknown_names_are_skipped_and_reported_unless_strict() -> None:
    text = ",name,,\n0,sky,Void,Vehicel\n1,building,Void,\n2,car,Vehicle,\n3,road,Ground,\n"
    onto = ontology_from_csv(text, source=SRC, extra=EXT, origin="typo.csv")
    assert any("typo.csv:2: skipped 'Vehicel'" in line for line in onto.import_report)
    with pytest.raises(Exception, match=r"typo\.csv:2: unknown extra label.*'Vehicel'"):
        ontology_from_csv(text, source=SRC, extra=EXT, origin="typo.csv", strict=True)


def test_labels_in_no_row_default_to_ignore_and_are_reported() -> None:
    text = ",name,,\n0,sky,Void,\n1,building,,\n2,car,Vehicle,\n3,road,,\n"
    onto = ontology_from_csv(text, source=SRC, extra=EXT, origin="short.csv")
    assert onto.rows["Ground"] == IGNORE_ROW and not onto.allowed[2].any()
    assert any("['Ground']" in line and "written as ignore" in line for line in onto.import_report)


def test_aliases_and_loose_spellings_resolve_and_are_reported() -> None:
    ext = Taxonomy.from_dict(
        {
            "name": "ext_alias",
            "groups": {"veh": ["Car 1", "Car 2"]},
            "classes": [
                {"id": 0, "name": "Traffic Light", "aliases": ["TrafficLight"]},
                {"id": 1, "name": "Car 1"},
                {"id": 2, "name": "Car 2"},
            ],
        }
    )
    src = Taxonomy.from_dict(
        {"name": "s2", "classes": [{"id": 0, "name": "light"}, {"id": 1, "name": "car"}]}
    )
    text = ",name,,\n0,light,TrafficLight,\n1,car,veh,\n"
    onto = ontology_from_csv(text, source=src, extra=ext, origin="a.csv")
    assert onto.rows == {"Traffic Light": ["light"], "Car 1": ["car"], "Car 2": ["car"]}
    kinds = sorted(m.rsplit("(", 1)[1] for m in onto.name_matches)
    assert kinds == ["alias)", "group)"]
    assert ext.lookup(" traffic_light ").kind == "normalized"


# ---------------------------------------------------------------- taxonomy by path
def test_mapping_with_a_taxonomy_by_path_reads_again(tmp_path: Path) -> None:
    tax_dir, out_dir = tmp_path / "taxa", tmp_path / "out" / "deep"
    tax_dir.mkdir()
    out_dir.mkdir(parents=True)
    (tax_dir / "mine.yaml").write_text(yaml.safe_dump(EXT.to_dict() | {"name": "mine"}))
    src_csv = tmp_path / "m.csv"
    src_csv.write_text(",name,,\n0,sky,Void,\n1,building,Void,\n2,car,Vehicle,\n3,road,Ground,\n")
    (tax_dir / "src4.yaml").write_text(yaml.safe_dump(SRC.to_dict()))
    main(["ontology", "convert", str(src_csv), str(out_dir / "m.yaml"),
          "--source", str(tax_dir / "src4.yaml"), "--extra", str(tax_dir / "mine.yaml")])  # fmt: skip
    written = yaml.safe_load((out_dir / "m.yaml").read_text())
    assert written["extra"] == "../../taxa/mine.yaml"
    again = Ontology.from_file(out_dir / "m.yaml")
    first = read_ontology(
        src_csv, source=str(tax_dir / "src4.yaml"), extra=str(tax_dir / "mine.yaml")
    )
    assert again.same_as(first) and again.extra.name == "mine"
    # and as CSV: the header-row metadata names the files, relative to the CSV
    write_ontology(again, out_dir / "m.csv")
    assert read_ontology(out_dir / "m.csv").same_as(first)


# ---------------------------------------------------------------- export / round trips
@pytest.mark.parametrize("name", list_mappings())
def test_every_builtin_mapping_round_trips_through_the_reference_csv(
    name: str, tmp_path: Path
) -> None:
    """Built-in -> reference CSV -> import: the same allowed matrix and void option;
    read with the metadata, the same mapping exactly; and the reference's own loader
    logic sees, for every extra label, the allowed classes (plus 'void' for the void
    option or an all-ignore row)."""
    onto = load_ontology(name)
    paths = write_ontology(onto, tmp_path / "lists" / f"master_labels_{onto.source.name}.csv")
    assert [p.name for p in paths] == [f"master_labels_{onto.source.name}.csv", "labels.csv"]
    assert read_ontology(paths[0]).same_as(onto)
    plain = ontology_from_csv(
        ontology_to_csv(onto, metadata=False),
        source=onto.source,
        extra=onto.extra,
        projection=onto.projection_overrides or {},
    )
    ids = [c.id for c in onto.extra.classes]
    assert np.array_equal(plain.allowed[ids], onto.allowed[ids])
    assert np.array_equal(plain.void_allowed, onto.void_allowed)
    labels = [r["name"] for r in csv.DictReader(io.StringIO(labels_csv_text(onto.extra)))]
    assert labels == [c.name for c in onto.extra.classes]
    seen = _reference_parse(paths[0].read_text(), labels)
    for cls in onto.extra.classes:
        want = onto.allowed_names(cls.name)
        if onto.void_allowed[cls.id] or not want:
            want = [*want, "void"]
        assert seen[cls.name] == want, cls.name


def test_reference_path_convention() -> None:
    p = Path("x/datasets/cityscapes/lists/master_labels_cityscapes.csv")
    assert reference_taxonomies(p) == ("cityscapes", "cityscapes")
    assert reference_taxonomies("elsewhere/m.csv") == (None, None)


# ---------------------------------------------------------------- the reference's own files
needs_reference = pytest.mark.skipif(
    not REFERENCE_CSVS,
    reason=f"the reference mapping files are not at {REFERENCE} (shared/reference absent)",
)


@needs_reference
def test_all_reference_csvs_convert_by_path_alone(tmp_path: Path) -> None:
    """Each of the paper's 38 mapping files converts with no option, the written YAML
    passes the loader and defines the same mapping as the one converted."""
    assert len(REFERENCE_CSVS) == 38
    failures = []
    for path in REFERENCE_CSVS:
        out = tmp_path / f"{path.parent.parent.name}_{path.stem}.yaml"
        try:
            main(["ontology", "convert", str(path), str(out), "--json"])
            again = Ontology.from_file(out)
            assert again.same_as(read_ontology(path)), path
        except SystemExit as exc:
            failures.append(f"{path}: exit {exc.code}")
    assert not failures, failures


# ---------------------------------------------------------------- derived coarse mappings
def test_derive_unions_the_fine_rows_and_adds_the_void_option() -> None:
    """camvid32 -> cityscapes through camvid32 -> camvid11: CamVid-11 'Car' allows what
    Car, SUVPickupTruck, Truck_Bus, Train and OtherMoving allow; 'Building' gets the void
    option because its member Bridge is written as ignore in the reference mapping."""
    from labelbridge.taxonomy.compose import derive_mapping

    fine = load_ontology("camvid32_to_cityscapes")
    derived = derive_mapping(fine, load_ontology("camvid32_to_camvid11"))
    members = ["Car", "SUVPickupTruck", "Truck_Bus", "Train", "OtherMoving"]
    union = {n for m in members for n in fine.allowed_names(m)}
    assert set(derived.allowed_names("Car")) == union
    assert (
        fine.allowed_names("Bridge") == []
        and derived.void_allowed[derived.extra.get("Building").id]
    )
    assert not derived.void_allowed[derived.extra.get("Sky").id]  # Sky: only Sky -> [sky]
    assert derived.allowed_names("Sky") == fine.allowed_names("Sky") == ["sky"]
    with pytest.raises(Exception, match="bridges 'camvid32'"):
        derive_mapping(
            load_ontology("idd_labelids_to_cityscapes"), load_ontology("camvid32_to_camvid11")
        )


# ---------------------------------------------------------------- MSeg's file layouts
def test_mseg_master_sheet_by_column_name() -> None:
    """MSeg_master.tsv's layout (docs/mseg-format.md): many columns, CRLF, the universal
    column as the source, a dataset column chosen by MSeg's name (its taxonomy found by
    alias), `{a, b}` cells with uneven spacing, the `unlabeled` row as void."""
    universal = Taxonomy.from_dict(
        {
            "name": "uni_small",
            "classes": [
                {"id": 0, "name": "road"},
                {"id": 1, "name": "sidewalk_pavement"},
                {"id": 2, "name": "car"},
                {"id": 3, "name": "building"},
                {"id": 255, "name": "unlabeled", "ignore": True},
            ],
        }
    )
    rows = [
        ["Parent Category", "cityscapes-19", "universal", "camvid-11"],
        ["ground", "road", "road", "Road"],
        ["ground", "sidewalk", "sidewalk_pavement", "Sidewalk"],
        ["vehicle", "{car,  truck}", "car", "Car"],
        ["building-parent", "building", "building", "Building"],
        ["unlabeled", "", "unlabeled", ""],
    ]
    text = "\r\n".join("\t".join(r) for r in rows)  # no final line end, as the real file
    onto = ontology_from_tsv(text, source=universal, extra_column="cityscapes-19", origin="m.tsv")
    assert onto.extra.name == "cityscapes" and onto.source.name == "uni_small"
    assert onto.allowed_names("truck") == ["car"] and onto.allowed_names("road") == ["road"]
    assert onto.rows["sky"] == IGNORE_ROW  # in no row: ignore, reported
    assert any("in no row" in line for line in onto.import_report)
    camvid = ontology_from_tsv(text, source=universal, extra_column="camvid-11")
    assert camvid.extra.name == "camvid11"
    assert camvid.allowed_names("Pavement") == ["sidewalk_pavement"]  # MSeg's 'Sidewalk'


def test_mseg_pairwise_file(tmp_path: Path) -> None:
    """A pairwise `<from>_to_<to>.tsv` (one row per <from> class, its one <to> class,
    `unlabeled` = ignore, CRLF) written from our camvid32 -> camvid11 bridge reads back as
    the same allowed matrix, by its file name alone."""
    bridge = load_ontology("camvid32_to_camvid11")
    rows = ["camvid-32\tcamvid-11"]
    for cls in bridge.extra.classes:
        target = bridge.allowed_names(cls.name)
        rows.append(f"{cls.name}\t{target[0] if target else 'unlabeled'}")
    path = tmp_path / "camvid-32_to_camvid-11.tsv"
    path.write_bytes("\r\n".join(rows).encode())
    onto = read_ontology(path)
    assert (onto.extra.name, onto.source.name) == ("camvid32", "camvid11")
    ids = [c.id for c in bridge.extra.classes]
    assert np.array_equal(onto.allowed[ids], bridge.allowed[ids])
    assert onto.unlabelled == "ignore" and not onto.allowed[onto.extra.get("Void").id].any()
