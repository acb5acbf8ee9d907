"""MSeg's universal taxonomy (built-in ``mseg_universal``) holds MSeg's published names and
ids, and the MSeg-format fixtures are what the real files look like (see
docs/mseg-format.md; facts from mseg-dataset/mseg-api, cited in the YAML's ``source``)."""

from __future__ import annotations

import csv

import pytest

from benchmarks.common.layouts.mseg import (
    MSEG_MASTER_HEADER,
    MSEG_MASTER_ROWS,
    write_cityscapes34_to_19_tsv,
    write_mseg_master_tsv,
)
from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy import load_taxonomy
from labelbridge.taxonomy.formats import ontology_from_tsv
from labelbridge.taxonomy.registry import builtin_taxonomy_name


@pytest.fixture(scope="module")
def universal():
    return load_taxonomy("mseg_universal")


def test_194_train_classes_and_unlabeled_255(universal) -> None:
    assert len(universal.classes) == 195
    assert universal.num_classes == 194
    # MSeg's ids are the 0-based rows of the 'universal' column; train ids are the same
    assert [c.id for c in universal.train_classes] == list(range(194))
    assert [c.train_id for c in universal.train_classes] == list(range(194))
    unl = universal.by_id(255)
    assert unl.name == "unlabeled" and unl.ignore and unl.train_id == IGNORE_INDEX
    assert universal.ignore_ids == [255]


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        (0, "backpack"),
        (16, "animal_other"),
        (35, "building"),
        (41, "cell phone"),  # the one name MSeg writes with a space
        (57, "chair_other"),
        (98, "road"),
        (100, "sidewalk_pavement"),
        (125, "person"),
        (127, "bicyclist"),
        (135, "traffic_sign"),
        (142, "sky"),
        (143, "pole"),
        (174, "vegetation"),
        (176, "car"),
        (191, "wall"),
        (193, "window_blind"),
    ],
)
def test_known_names_at_mseg_ids(universal, uid: int, name: str) -> None:
    assert universal.by_id(uid).name == name


def test_aliases_and_colours(universal) -> None:
    assert builtin_taxonomy_name("universal") == "mseg_universal"
    assert builtin_taxonomy_name("MSeg") == "mseg_universal"
    colours = [c.color for c in universal.classes]
    assert len(set(colours)) == len(colours)
    # PASCAL VOC devkit colour map indexed by the MSeg id (stated in the file's notes)
    assert universal.by_id(1).color == (128, 0, 0)
    assert universal.by_id(255).color == (224, 224, 192)


def test_master_fixture_has_the_published_layout(tmp_path, universal) -> None:
    path = write_mseg_master_tsv(tmp_path)
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == 195 and b"\n" not in raw.replace(b"\r\n", b"")
    assert not raw.endswith(b"\r\n")
    rows = list(csv.reader(path.open(newline="", encoding="utf-8"), delimiter="\t"))
    assert tuple(rows[0]) == MSEG_MASTER_HEADER and len(MSEG_MASTER_HEADER) == 30
    assert {len(r) for r in rows} == {30}
    u = MSEG_MASTER_HEADER.index("universal")
    assert [r[u] for r in rows[1:]] == [c.name for c in universal.classes]


def test_master_fixture_cityscapes_column_reads_with_explicit_columns(tmp_path) -> None:
    text = write_mseg_master_tsv(tmp_path).read_text(encoding="utf-8")
    onto = ontology_from_tsv(
        text, source="mseg_universal", extra="cityscapes", extra_column="cityscapes-19"
    )
    mapping = onto.to_dict()["mapping"]
    cs = load_taxonomy("cityscapes")
    assert sorted(k for k, v in mapping.items() if v != "ignore") == sorted(cs.train_names)
    assert mapping["sidewalk"] == ["sidewalk_pavement"]
    assert mapping["rider"] == ["bicyclist"]
    assert mapping["traffic sign"] == ["traffic_sign"]


def test_master_fixture_unlabeled_row_and_brace_cells(tmp_path) -> None:
    text = write_mseg_master_tsv(tmp_path).read_text(encoding="utf-8")
    onto = ontology_from_tsv(
        text, source="mseg_universal", extra="cityscapes", extra_column="cityscapes-34"
    )
    mapping = onto.to_dict()["mapping"]
    # {car, caravan} and {pole, polegroup} cells; the unlabeled row's {...} cell
    assert mapping["caravan"] == ["car"] and mapping["polegroup"] == ["pole"]
    assert mapping["parking"] == "ignore" and mapping["ego vehicle"] == "ignore"
    assert "mapillary-public65" in MSEG_MASTER_ROWS["unlabeled"]


def test_pairwise_fixture_layout(tmp_path) -> None:
    path = write_cityscapes34_to_19_tsv(tmp_path)
    assert path.name == "cityscapes-34_to_cityscapes-19.tsv"
    lines = path.read_bytes().decode("ascii").split("\r\n")
    assert lines[0] == "cityscapes-34\tcityscapes-19"
    assert lines[1] == "unlabeled\tunlabeled" and lines[-1] == "bicycle\tbicycle"
    pairs = dict(line.split("\t") for line in lines[1:])
    assert len(pairs) == 34
    assert pairs["caravan"] == "unlabeled" and pairs["rider"] == "rider"
    assert sum(v != "unlabeled" for v in pairs.values()) == 19
