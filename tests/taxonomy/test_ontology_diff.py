"""The library side of ``labelbridge ontology diff`` / ``convert`` / ``check``
(:mod:`labelbridge.taxonomy.diff`, the projection and name-match summaries of
:class:`Ontology`, verified writing in :mod:`labelbridge.taxonomy.formats`), with values
worked out by hand on a three-class source and a four-class extra taxonomy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import labelbridge.taxonomy.formats as formats
from labelbridge.errors import OntologyError, UserError
from labelbridge.taxonomy import Ontology, Taxonomy, load_ontology
from labelbridge.taxonomy.diff import (
    Change,
    LabelChange,
    OntologyDiff,
    aligned_labels,
    diff_ontologies,
)
from labelbridge.taxonomy.formats import (
    carries_metadata,
    projection_json,
    read_ontology,
    verify_written,
    write_ontology,
)

SRC = Taxonomy.from_dict(
    {
        "name": "src",
        "classes": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}, {"id": 2, "name": "c"}],
    }
)
EXT = Taxonomy.from_dict(
    {
        "name": "ext",
        "classes": [
            {"id": 0, "name": "X"},
            {"id": 1, "name": "Y", "aliases": ["why"]},
            {"id": 7, "name": "Z"},
            {"id": 9, "name": "void", "ignore": True},
        ],
    }
)


def _onto(mapping: dict[str, Any], unlabelled: str = "ignore", source: Taxonomy = SRC) -> Ontology:
    data = {"source": source.name, "extra": "ext", "unlabelled": unlabelled, "mapping": mapping}
    return Ontology.from_dict(data, source=source, extra=EXT, origin=f"<{unlabelled}>")


# A: a, b -> X; c -> Y; Z ignored; projection a -> X, b -> X, c -> Y.
A = _onto({"X": ["a", "b"], "Y": ["c"], "Z": "ignore"})
# B: b moves from X to Z; the ignored 'void' pixels may be anything (unconstrained).
B = _onto({"X": ["a"], "Y": ["c"], "Z": ["b"]}, unlabelled="unconstrained")


def test_diff_lists_rows_policy_and_projection_by_hand() -> None:
    diff = diff_ontologies(A, B)
    assert isinstance(diff, OntologyDiff)
    assert diff.source == Change("src", "src") and diff.extra == Change("ext", "ext")
    assert diff.via is None
    assert diff.labels == {
        "X": LabelChange(added=[], removed=["b"]),
        "Z": LabelChange(added=["b"], removed=[]),
        "void": LabelChange(added=["a", "b", "c"], removed=[]),  # the policy change
    }
    assert diff.void == {}
    assert diff.unlabelled == Change("ignore", "unconstrained")
    assert diff.projection == {"b": Change("X", "Z")}
    assert not diff.identical


def test_diff_plain_data_is_the_json_form() -> None:
    assert diff_ontologies(A, B).to_dict() == {
        "a": "<ignore>",
        "b": "<unconstrained>",
        "taxonomies": {"source": {"a": "src", "b": "src"}, "extra": {"a": "ext", "b": "ext"}},
        "via": None,
        "labels": {
            "X": {"added": [], "removed": ["b"]},
            "Z": {"added": ["b"], "removed": []},
            "void": {"added": ["a", "b", "c"], "removed": []},
        },
        "void": {},
        "unlabelled": {"a": "ignore", "b": "unconstrained"},
        "projection": {"b": {"a": "X", "b": "Z"}},
        "identical": False,
    }


def test_diff_of_a_mapping_with_itself_is_identical_and_empty() -> None:
    diff = diff_ontologies(A, A)
    assert diff.identical
    assert (diff.labels, diff.void, diff.projection, diff.unlabelled) == ({}, {}, {}, None)


def test_diff_reports_the_void_option() -> None:
    with_void = _onto({"X": ["a", "b"], "Y": ["c", "ignore"], "Z": "ignore"})
    diff = diff_ontologies(A, with_void)
    assert diff.void == {"Y": Change(False, True)}
    assert diff.labels == {} and not diff.identical


def test_aligned_labels_same_extra_pairs_every_class_by_name() -> None:
    pairs, via = aligned_labels(A, B)
    assert via is None
    assert pairs == {"X": "X", "Y": "Y", "Z": "Z", "void": "void"}


def test_diff_across_camvid32_and_camvid11_goes_through_the_bridge() -> None:
    fine, coarse = load_ontology("camvid32_to_cityscapes"), load_ontology("camvid11_to_cityscapes")
    pairs, via = aligned_labels(fine, coarse)
    assert via == "camvid32_to_camvid11"
    assert pairs["Archway"] == "Building" and pairs["Car"] == "Car" and len(pairs) == 31
    flipped, via_back = aligned_labels(coarse, fine)  # coarse side first: {coarse: fine}
    assert via_back == "camvid32_to_camvid11"
    assert flipped["Building"] in {"Archway", "Bridge", "Building", "Tunnel", "Wall"}
    diff = diff_ontologies(fine, coarse)
    assert diff.via == "camvid32_to_camvid11"
    assert diff.labels["OtherMoving / Car"] == LabelChange(
        added=["car", "truck", "bus", "train"], removed=["bicycle"]
    )
    assert diff.void == {
        "OtherMoving / Car": Change(True, False),
        "ParkingBlock / Pavement": Change(True, False),
    }
    assert diff.unlabelled == Change("constrained", "unconstrained")
    assert diff.projection == {}  # only compared within one extra taxonomy
    assert not diff.identical


def test_projection_names_by_hand_with_a_class_without_counterpart() -> None:
    assert A.projection_names() == {"a": "X", "b": "X", "c": "Y"}
    assert B.projection_names() == {"a": "X", "b": "Z", "c": "Y"}
    four = Taxonomy.from_dict(
        {"name": "src", "classes": [{"id": k, "name": n} for k, n in enumerate("abcd")]}
    )
    onto = _onto({"X": ["a", "b"], "Y": ["c"], "Z": "ignore"}, source=four)
    assert onto.projection_names() == {"a": "X", "b": "X", "c": "Y", "d": "ignore"}


def test_name_match_counts_by_kind_in_order_first_met() -> None:
    onto = _onto({"x": ["a", "B"], "why": ["c"], "Z": "ignore"})
    assert len(onto.name_matches) == 3
    assert onto.name_match_counts() == {"normalized": 2, "alias": 1}
    assert A.name_match_counts() == {}


def test_projection_json_parses_or_names_the_problem() -> None:
    assert projection_json('{"b": "Z"}', "p") == {"b": "Z"}
    with pytest.raises(OntologyError, match=r"^f\.csv:3: projection must be a JSON object: "):
        projection_json("{bad", "f.csv:3: projection must be a JSON object")
    with pytest.raises(UserError) as err:
        projection_json("[1,", "--projection", UserError)
    assert type(err.value) is UserError and str(err.value).startswith("--projection: ")


def test_carries_metadata() -> None:
    assert carries_metadata("yaml", False) and carries_metadata("yaml", True)
    assert carries_metadata("csv", True) and carries_metadata("tsv", True)
    assert not carries_metadata("csv", False) and not carries_metadata("tsv", False)


@pytest.mark.parametrize(("name", "metadata"), [("m.csv", True), ("m.tsv", True), ("m.csv", False)])
def test_write_verify_reads_back_the_same_mapping(
    tmp_path: Path, name: str, metadata: bool
) -> None:
    path = tmp_path / name
    written = write_ontology(B, path, metadata=metadata, verify=True)
    assert written[0] == path
    assert [p.name for p in written[1:]] == (["labels.csv"] if name.endswith(".csv") else [])
    back = read_ontology(
        path,
        source=SRC,
        extra=EXT,
        unlabelled=None if metadata else "unconstrained",
        projection=None if metadata else {},
    )
    assert back.same_as(B)


def test_verify_written_refuses_another_mapping(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    write_ontology(A, path, verify=True)
    with pytest.raises(UserError, match="does not read back as the same mapping"):
        verify_written(B, path, "csv", metadata=True)


def test_formats_package_keeps_its_public_names() -> None:
    before = {
        "CSV_VOID_NAME", "FORMATS", "LABELS_CSV_COLUMNS", "METADATA_KEYS", "REFERENCE_PREFIX",
        "TSV_VOID_NAME", "format_from_path", "import_notes", "labels_csv_text",
        "ontology_from_csv", "ontology_from_pairwise_tsv", "ontology_from_tsv",
        "ontology_to_csv", "ontology_to_text", "ontology_to_tsv", "ontology_to_yaml",
        "pairwise_columns", "projection_rule_choice", "read_ontology", "reference_taxonomies",
        "rule_projection", "write_ontology",
    }  # fmt: skip
    assert before <= set(formats.__all__)
    assert all(hasattr(formats, name) for name in formats.__all__)
    assert formats.FORMATS == ("yaml", "csv", "tsv")
    assert (formats.CSV_VOID_NAME, formats.TSV_VOID_NAME) == ("void", "unlabeled")
