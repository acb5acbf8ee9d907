"""A procedural driving-scene world for the demo and tests: no downloads, numpy only.

Every scene is a perspective street seen from a car: sky with clouds, a road with lane
markings, kerbs and paved sidewalks, building facades with windows, trees and grass,
cars and box trucks seen from behind or ahead, and pedestrians on the sidewalks. The
renderer returns one *fine* label map in the source taxonomy; each dataset then applies
its own **labelling policy** (which classes exist, what is left void) and its own
**domain** (lighting, colour temperature, haze, contrast, sky and vehicle colours).

The world written by :func:`generate_world` mirrors the paper's setting in miniature:

* ``source`` (taxonomy ``synth_source``: road, sidewalk, building, vegetation, sky, car,
  truck, person): a small, clear-weather labelled set (splits ``train`` and ``val``).
* ``extra_a`` (``synth_coarse``): overcast, warm, hazy domain (each image somewhere
  between the source look and a strong shift, see :attr:`Domain.strength`); a coarser
  policy merging road+sidewalk into ``ground`` and car+truck into ``vehicle`` (as A2D2
  merges buses with trucks).
* ``extra_b`` (``synth_lidar``): dark, bluish dusk domain (likewise graded); labels as if
  projected from a LiDAR (as ApolloScape): the sky, building windows and the upper parts
  of facades are systematically left ``void``.
* ``wild`` (source taxonomy): a robustness set whose domains mix and exaggerate the two
  extra domains, never trained on (as WildDash).

Every dataset is written in the generic folder layout
``<root>/images/<split>/<name>.png``, ``<root>/labels/<split>/<name>.png`` (id PNGs,
mode ``L``) with ``<root>/taxonomy.yaml``; the ontology mappings ``extra -> source``
are written to ``<world>/mappings/`` and name the taxonomies by relative path, which is
also how users add their own.

Example:
    >>> from pathlib import Path
    >>> world = generate_world(Path("/tmp/world"), seed=0, sizes=WorldSizes.tiny())
    >>> world.datasets["extra_b"].name
    'extra_b'

Modules: :mod:`~labelbridge.world.taxonomies` (classes, taxonomies, mappings, labelling
policies), :mod:`~labelbridge.world.domains` (appearance), :mod:`~labelbridge.world.canvas`
(drawing primitives), :mod:`~labelbridge.world.street` and :mod:`~labelbridge.world.scene`
(rendering), :mod:`~labelbridge.world.layout` (sizes and folders),
:mod:`~labelbridge.world.generate` (writing the datasets).
"""

from __future__ import annotations

from labelbridge.world.canvas import (
    Canvas,
    Street,
    value_noise,
)
from labelbridge.world.domains import (
    CLEAR,
    DUSK,
    EXTRA_STRENGTH,
    OVERCAST,
    WILD_STRENGTH,
    Domain,
    lerp_domains,
    wild_domain,
)
from labelbridge.world.generate import (
    generate_world,
)
from labelbridge.world.layout import (
    WorldDataset,
    WorldPaths,
    WorldSizes,
    describe_world,
)
from labelbridge.world.scene import (
    apply_domain,
    render_scene,
)
from labelbridge.world.taxonomies import (
    BUILDING,
    CAR,
    COARSE_CLASSES,
    COARSE_LUT,
    LIDAR_CLASSES,
    LIDAR_LUT,
    LIDAR_MAX_HEIGHT,
    MAPPING_HEADERS,
    MAPPINGS,
    PERSON,
    ROAD,
    SIDEWALK,
    SKY,
    SOURCE_CLASSES,
    TRUCK,
    UNLABELLED,
    VEGETATION,
    VOID,
    coarse_labels,
    coarse_taxonomy,
    fine_labels,
    lidar_labels,
    lidar_taxonomy,
    source_taxonomy,
)

__all__ = [
    "BUILDING",
    "CAR",
    "CLEAR",
    "COARSE_CLASSES",
    "COARSE_LUT",
    "Canvas",
    "DUSK",
    "Domain",
    "EXTRA_STRENGTH",
    "LIDAR_CLASSES",
    "LIDAR_LUT",
    "LIDAR_MAX_HEIGHT",
    "MAPPINGS",
    "MAPPING_HEADERS",
    "OVERCAST",
    "PERSON",
    "ROAD",
    "SIDEWALK",
    "SKY",
    "SOURCE_CLASSES",
    "Street",
    "TRUCK",
    "UNLABELLED",
    "VEGETATION",
    "VOID",
    "WILD_STRENGTH",
    "WorldDataset",
    "WorldPaths",
    "WorldSizes",
    "apply_domain",
    "coarse_labels",
    "coarse_taxonomy",
    "describe_world",
    "fine_labels",
    "generate_world",
    "lerp_domains",
    "lidar_labels",
    "lidar_taxonomy",
    "render_scene",
    "source_taxonomy",
    "value_noise",
    "wild_domain",
]
