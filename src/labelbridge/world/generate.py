"""Writing the world: every dataset in the generic folder layout, taxonomies, mappings."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from labelbridge.files import write_text_atomic
from labelbridge.world.domains import CLEAR, DUSK, OVERCAST, Domain, wild_domain
from labelbridge.world.layout import WorldPaths, WorldSizes, describe_world
from labelbridge.world.scene import render_scene
from labelbridge.world.taxonomies import (
    MAPPING_HEADERS,
    MAPPINGS,
    coarse_labels,
    coarse_taxonomy,
    fine_labels,
    lidar_labels,
    lidar_taxonomy,
    source_taxonomy,
)

log = logging.getLogger(__name__)


def _write_yaml(path: Path, data: dict, header: str = "") -> None:
    write_text_atomic(path, header + yaml.safe_dump(data, sort_keys=False))


def _write_split(
    root: Path,
    split: str,
    count: int,
    *,
    seed: int,
    stream: int,
    image_size: tuple[int, int],
    domain_of: Callable[[np.random.Generator], Domain],
    relabel: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> None:
    img_dir, lab_dir = root / "images" / split, root / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rng = np.random.default_rng([seed, stream, i])
        domain = domain_of(rng)
        image, fine, void = render_scene(rng, image_size=image_size, domain=domain)
        stem = f"{split}_{i:05d}"
        Image.fromarray(image, mode="RGB").save(img_dir / f"{stem}.png")
        Image.fromarray(relabel(fine, void), mode="L").save(lab_dir / f"{stem}.png")


def generate_world(
    out_dir: Path,
    *,
    seed: int,
    sizes: WorldSizes | None = None,
    image_size: tuple[int, int] = (128, 96),
) -> WorldPaths:
    """Render the demo world (four datasets and two mappings) into ``out_dir``.

    A folder that already holds a complete world with the same parameters
    (``world.json``) is reused as is; otherwise it is regenerated from scratch.
    Each image depends only on ``(seed, dataset, index)``.

    Args:
        out_dir: destination folder (created).
        seed: world seed.
        sizes: images per split (default :class:`WorldSizes`).
        image_size: ``(W, H)`` of every image.

    Returns:
        The paths of the datasets, taxonomies and mappings.
    """
    sizes = sizes or WorldSizes()
    out_dir = Path(out_dir)
    params = {"seed": seed, "sizes": asdict(sizes), "image_size": list(image_size), "format": 4}
    world = describe_world(out_dir, sizes)
    marker = out_dir / "world.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == params:
                log.info("reusing the synthetic world in %s", out_dir)
                world.rendered = False
                return world
        except (OSError, ValueError):
            pass
    for ds in world.datasets.values():
        if ds.root.exists():
            shutil.rmtree(ds.root)
    marker.unlink(missing_ok=True)
    log.info("rendering the synthetic world (seed %d) into %s", seed, out_dir)

    taxonomies = {
        "source": source_taxonomy(),
        "extra_a": coarse_taxonomy(),
        "extra_b": lidar_taxonomy(),
        "wild": source_taxonomy(),
    }
    relabels = {
        "source": fine_labels,
        "extra_a": coarse_labels,
        "extra_b": lidar_labels,
        "wild": fine_labels,
    }
    fixed = {"source": CLEAR, "extra_a": OVERCAST, "extra_b": DUSK}
    for stream, (name, ds) in enumerate(world.datasets.items()):
        _write_yaml(ds.taxonomy, taxonomies[name].to_dict())
        domain_of = wild_domain if name == "wild" else (lambda rng, d=fixed[name]: d)
        for split, count in ds.splits.items():
            _write_split(
                ds.root,
                split,
                count,
                seed=seed,
                stream=stream * 16 + ["train", "val"].index(split),
                image_size=image_size,
                domain_of=domain_of,
                relabel=relabels[name],
            )
        if ds.mapping is not None:
            _write_yaml(ds.mapping, MAPPINGS[name], MAPPING_HEADERS[name])
    write_text_atomic(marker, json.dumps(params))
    return world
