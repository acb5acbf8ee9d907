"""The procedural demo world: determinism, label policies, files readable by the folder reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labelbridge.constants import IGNORE_INDEX
from labelbridge.data import create_dataset
from labelbridge.taxonomy import load_ontology
from labelbridge.world import (
    BUILDING,
    CAR,
    CLEAR,
    COARSE_LUT,
    DUSK,
    LIDAR_LUT,
    OVERCAST,
    SKY,
    TRUCK,
    Canvas,
    Domain,
    WorldSizes,
    apply_domain,
    coarse_labels,
    generate_world,
    lidar_labels,
    render_scene,
    value_noise,
)

SIZE = (64, 48)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return generate_world(
        tmp_path_factory.mktemp("world"), seed=3, sizes=WorldSizes.tiny(), image_size=SIZE
    )


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, world) -> None:
    again = generate_world(tmp_path / "again", seed=3, sizes=WorldSizes.tiny(), image_size=SIZE)
    assert _files(again.root) == _files(world.root)
    other = generate_world(tmp_path / "other", seed=4, sizes=WorldSizes.tiny(), image_size=SIZE)
    a, b = _files(world.root), _files(other.root)
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a) == len(a)


def test_existing_world_is_reused_and_other_parameters_regenerate(tmp_path: Path) -> None:
    sizes = WorldSizes(source_train=1, source_val=1, extra_a=1, extra_b=1, wild=1)
    w = generate_world(tmp_path, seed=0, sizes=sizes, image_size=SIZE)
    image = w.datasets["source"].root / "images" / "train" / "train_00000.png"
    stamp = image.stat().st_mtime_ns
    generate_world(tmp_path, seed=0, sizes=sizes, image_size=SIZE)
    assert image.stat().st_mtime_ns == stamp
    bigger = WorldSizes(source_train=2, source_val=1, extra_a=1, extra_b=1, wild=1)
    generate_world(tmp_path, seed=0, sizes=bigger, image_size=SIZE)
    assert len(list((w.datasets["source"].root / "images" / "train").glob("*.png"))) == 2


@pytest.mark.parametrize(
    ("name", "split", "taxonomy", "count"),
    [
        ("source", "train", "synth_source", 4),
        ("source", "val", "synth_source", 3),
        ("extra_a", "train", "synth_coarse", 4),
        ("extra_b", "train", "synth_lidar", 4),
        ("wild", "val", "synth_source", 3),
    ],
)
def test_folder_reader_reads_every_dataset(
    world, name: str, split: str, taxonomy: str, count: int
) -> None:
    reader = create_dataset("folder", world.datasets[name].root, split)
    assert reader.taxonomy.name == taxonomy
    assert len(reader) == count
    allowed = {c.id for c in reader.taxonomy.classes}
    for sample in reader.iter_samples():  # the reader refuses ids outside the taxonomy
        assert sample.image.shape == (SIZE[1], SIZE[0], 3)
        assert sample.label.shape == (SIZE[1], SIZE[0])
        assert set(np.unique(sample.label).tolist()) <= allowed


def test_taxonomies_and_mappings(world) -> None:
    onto_a = load_ontology(world.datasets["extra_a"].mapping)
    onto_b = load_ontology(world.datasets["extra_b"].mapping)
    assert onto_a.source.train_names == [
        "road",
        "sidewalk",
        "building",
        "vegetation",
        "sky",
        "car",
        "truck",
        "person",
    ]
    assert onto_a.extra.train_names == [
        "ground",
        "building",
        "vegetation",
        "sky",
        "vehicle",
        "person",
    ]
    assert onto_a.allowed_names("vehicle") == ["car", "truck"]
    assert onto_a.allowed_names("ground") == ["road", "sidewalk"]
    assert "car" not in onto_a.extra and "truck" not in onto_a.extra
    assert "sky" not in onto_b.extra
    assert onto_b.unlabelled == "constrained"
    assert onto_b.allowed_names("void") == ["building", "sky"]
    # projections for evaluation in the extra taxonomies: car, truck -> vehicle; sky -> none
    assert onto_a.projection.tolist() == [0, 0, 1, 2, 3, 4, 4, 5]
    assert onto_b.projection.tolist() == [0, 1, 2, 3, IGNORE_INDEX, 4, 5, 6]


def test_labelling_policies_on_rendered_scenes() -> None:
    seen_car = seen_truck = False
    for i in range(6):
        rng = np.random.default_rng([9, i])
        image, fine, void = render_scene(rng, image_size=SIZE, domain=DUSK)
        assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
        assert set(np.unique(fine).tolist()) <= set(range(8))
        coarse = coarse_labels(fine, void)
        # extra A: car and truck are one 'vehicle' class (id 4), road and sidewalk 'ground' (0)
        assert (coarse[(fine == CAR) | (fine == TRUCK)] == 4).all()
        assert (coarse[fine <= 1] == 0).all()
        lidar = lidar_labels(fine, void)
        # extra B: the sky is always void, and so are windows / upper facades, not all of a building
        assert (lidar[fine == SKY] == IGNORE_INDEX).all()
        assert (lidar[~void] == LIDAR_LUT[fine[~void]]).all()
        building = fine == BUILDING
        if building.sum() > 50:
            assert 0 < (void & building).sum() < building.sum()
        seen_car |= bool((fine == CAR).any())
        seen_truck |= bool((fine == TRUCK).any())
    assert seen_car and seen_truck
    assert COARSE_LUT[SKY] == 3 and LIDAR_LUT[SKY] == IGNORE_INDEX


def test_domains_shift_colours() -> None:
    means = {}
    for domain in (CLEAR, OVERCAST.towards(1.0), DUSK.towards(1.0)):
        rng = np.random.default_rng([1, 2])
        image, fine, _ = render_scene(rng, image_size=SIZE, domain=domain)
        means[domain.name] = image.reshape(-1, 3).mean(axis=0)
    # dusk is darker and bluer than clear day; overcast is less saturated than clear
    assert means["dusk"].sum() < means["clear"].sum()
    assert means["dusk"][2] - means["dusk"][0] > means["clear"][2] - means["clear"][0] - 5
    assert np.ptp(means["overcast"]) < np.ptp(means["clear"])


def test_towards_interpolates_from_the_clear_domain() -> None:
    half = DUSK.towards(0.5)
    assert half.brightness == pytest.approx(-0.06)
    assert half.tint == pytest.approx((0.89, 0.94, 1.11))
    assert half.sky == "dusk" and half.sky_mix == pytest.approx(0.5)
    assert half.truck_car_share == pytest.approx(0.5) and half.strength == (1.0, 1.0)
    assert DUSK.towards(0.0).contrast == CLEAR.contrast


def test_identity_domain_keeps_colours() -> None:
    rgb = np.array([[[0.0, 0.5, 1.0], [0.2, 0.4, 0.6]]], np.float32)
    canvas = Canvas(
        rgb=rgb,
        label=np.zeros((1, 2), np.uint8),
        closeness=np.ones((1, 2), np.float32),
        lidar_void=np.zeros((1, 2), bool),
    )
    out = apply_domain(canvas, np.random.default_rng(0), Domain("id", noise=0.0))
    assert out.tolist() == [[[0, 128, 255], [51, 102, 153]]]


def test_value_noise_range_and_shape() -> None:
    field = value_noise(np.random.default_rng(0), 30, 40, 5)
    assert field.shape == (30, 40) and field.dtype == np.float32
    assert 0.0 <= field.min() and field.max() <= 1.0 and field.std() > 0.05
