"""Property-based tests (issue 9, item 5): the confusion matrix's mIoU does not depend on
how class ids are numbered; the pseudo-labeller's masked argmax with the built-in
mappings only ever writes an allowed source class or ignore; the mapping loader turns
wrongly typed values into an error naming file, line and label, never a mapping.

(Random valid and misspelt/duplicate/uncovered mappings are in ``test_mapping_formats.py``;
random allowed matrices in ``test_priors.py``.)"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.common.reliability import builtin_mapping_text, line_of
from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import OntologyError
from labelbridge.evaluation import ConfusionMatrix
from labelbridge.taxonomy import list_mappings, load_ontology
from labelbridge.taxonomy.priors import allowed_tensor, apply_priors

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- confusion matrix
@st.composite
def labelled_maps(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray, list[int]]:
    """``(K, pred, target, permutation)``: predictions may hold any id (outside ``0..K-1``
    they are misses), targets ``0..K-1`` or ignore."""
    k = draw(st.integers(1, 8))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    target = rng.integers(0, k, size=(h, w))
    target[rng.random((h, w)) < draw(st.floats(0.0, 0.5))] = IGNORE_INDEX
    pred = rng.integers(0, k + 2, size=(h, w))  # k, k+1: no class (misses)
    perm = draw(st.permutations(range(k)))
    return k, pred, target, list(perm)


def _relabel(values: np.ndarray, perm: list[int]) -> np.ndarray:
    """Class ``c`` becomes ``perm[c]``; other values (ignore, misses) stay."""
    out = values.copy()
    inside = values < len(perm)
    out[inside] = np.asarray(perm)[values[inside]]
    return out


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


@SETTINGS
@given(labelled_maps(), st.booleans())
def test_miou_is_invariant_under_permutation_of_class_ids(case, as_torch: bool) -> None:
    k, pred, target, perm = case
    convert = (lambda a: torch.from_numpy(a)) if as_torch else (lambda a: a)
    plain, permuted = ConfusionMatrix(k), ConfusionMatrix(k)
    plain.update(convert(pred), convert(target))
    permuted.update(convert(_relabel(pred, perm)), convert(_relabel(target, perm)))
    a, b = plain.compute(), permuted.compute()
    assert _same(a.miou, b.miou)
    assert _same(a.pixel_accuracy, b.pixel_accuracy)
    for c in range(k):  # each class keeps its IoU under its new id
        assert _same(float(a.per_class_iou[c]), float(b.per_class_iou[perm[c]]))
    assert a.num_pixels == b.num_pixels == int((target != IGNORE_INDEX).sum())


# ---------------------------------------------------------------- masking with real mappings
MAPPINGS = list_mappings()


@st.composite
def scored_pixels(draw: st.DrawFn) -> tuple[str, np.ndarray, np.ndarray]:
    """A built-in mapping, ``(1, K, H, W)`` scores with exact zeros, extra raw ids."""
    name = draw(st.sampled_from(MAPPINGS))
    onto = load_ontology(name)
    k = onto.source.num_classes
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    probs = rng.random((1, k, h, w)).astype(np.float32)
    probs[rng.random(probs.shape) < draw(st.floats(0.0, 0.9))] = 0.0
    ids = np.array([c.id for c in onto.extra.classes])
    gt = rng.choice(ids, size=(1, h, w))
    return name, probs, gt


@settings(max_examples=80, deadline=None)
@given(scored_pixels())
def test_masked_argmax_with_builtin_mappings_is_allowed_or_ignore(case) -> None:
    name, probs, gt = case
    onto = load_ontology(name)
    out = apply_priors(torch.from_numpy(probs), torch.from_numpy(gt), allowed_tensor(onto.allowed))
    labels = out.labels.numpy()[0]
    assert set(np.unique(labels)) <= set(range(onto.source.num_classes)) | {IGNORE_INDEX}
    for (i, j), lab in np.ndenumerate(labels):
        row = onto.allowed[gt[0, i, j]]
        masked = probs[0, :, i, j] * row
        if lab == IGNORE_INDEX:
            assert masked.max() == 0  # empty allowed set, or every allowed score zero
        else:
            assert row[lab] and masked[lab] == masked.max() > 0
    assert (out.confidence.numpy()[0][labels == IGNORE_INDEX] == 0).all()


# ---------------------------------------------------------------- loader: wrong types
WRONG_ROWS = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dictionaries(st.sampled_from(["a", "pole", "sky"]), st.integers(), min_size=1, max_size=2),
    st.lists(
        st.one_of(st.integers(), st.booleans(), st.lists(st.just("pole"), min_size=1)),
        min_size=1,
        max_size=3,
    ),
)
ROWS = ["Sky", "Building", "Pole", "Road", "Car", "Pedestrian"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ROWS), WRONG_ROWS)
def test_wrongly_typed_row_names_file_line_and_label(row: str, value: object) -> None:
    text = builtin_mapping_text()
    number = line_of(text, f"  {row}:")
    lines = text.splitlines()
    lines[number - 1] = (
        f"  {row}: {yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bad.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with pytest.raises(OntologyError) as err:
            load_ontology(str(path))
    message = str(err.value)
    assert f"bad.yaml:{number}:" in message and "must be" in message, message
    if not isinstance(value, list):  # a list with a wrong item names the item instead
        assert repr(row) in message, message


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("mapping", "[Sky, Road]", "mapping"),
        ("mapping", "3", "mapping"),
        ("unlabelled", "3", "unlabelled"),
        ("source", "[cityscapes]", "['cityscapes']"),
        ("projection", "[a]", "projection"),
    ],
)
def test_wrongly_typed_top_level_value_names_file_line_and_key(
    key: str, value: str, needle: str, tmp_path: Path
) -> None:
    text = builtin_mapping_text()
    number = line_of(text, f"{key}:")
    lines = text.splitlines()
    lines[number - 1] = f"{key}: {value}"
    # drop the block's indented lines that followed
    lines = lines[:number] + [line for line in lines[number:] if not line.startswith("  ")]
    path = tmp_path / "bad.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(OntologyError) as err:
        load_ontology(str(path))
    message = str(err.value)
    assert f"bad.yaml:{number}:" in message and needle in message, message
