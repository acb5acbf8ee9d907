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
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from labelbridge.constants import IGNORE_INDEX
from labelbridge.files import write_text_atomic
from labelbridge.taxonomy import Taxonomy

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- taxonomies

#: Source (fine) classes: raw id == train id == index in this tuple.
SOURCE_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("building", (70, 70, 70)),
    ("vegetation", (107, 142, 35)),
    ("sky", (70, 130, 180)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("person", (220, 20, 60)),
)
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, TRUCK, PERSON = range(len(SOURCE_CLASSES))

#: Extra dataset A (coarse): ``(name, colour, fine classes it covers)``.
COARSE_CLASSES: tuple[tuple[str, tuple[int, int, int], tuple[int, ...]], ...] = (
    ("ground", (128, 64, 128), (ROAD, SIDEWALK)),
    ("building", (70, 70, 70), (BUILDING,)),
    ("vegetation", (107, 142, 35), (VEGETATION,)),
    ("sky", (70, 130, 180), (SKY,)),
    ("vehicle", (0, 0, 142), (CAR, TRUCK)),
    ("person", (220, 20, 60), (PERSON,)),
)

#: Extra dataset B (LiDAR-like): every class but sky; sky, windows and upper facades void.
LIDAR_CLASSES: tuple[tuple[str, tuple[int, int, int], tuple[int, ...]], ...] = (
    ("road", (128, 64, 128), (ROAD,)),
    ("sidewalk", (244, 35, 232), (SIDEWALK,)),
    ("building", (70, 70, 70), (BUILDING,)),
    ("vegetation", (107, 142, 35), (VEGETATION,)),
    ("car", (0, 0, 142), (CAR,)),
    ("truck", (0, 0, 70), (TRUCK,)),
    ("person", (220, 20, 60), (PERSON,)),
)

#: Name of the ignored class in every synthetic taxonomy; its raw id is ``IGNORE_INDEX``.
UNLABELLED = "unlabelled"
VOID = "void"

#: Facade height (in road half-widths) above which the LiDAR-like policy leaves building void.
LIDAR_MAX_HEIGHT: float = 0.9


def _taxonomy_dict(
    name: str, title: str, classes: list[tuple[str, tuple[int, int, int]]], void: str
) -> dict:
    entries = [{"id": i, "name": n, "color": list(c)} for i, (n, c) in enumerate(classes)]
    entries.append({"id": IGNORE_INDEX, "name": void, "color": [0, 0, 0], "ignore": True})
    return {
        "name": name,
        "title": title,
        "label_format": "id",
        "source": "labelbridge procedural demo world (labelbridge.data.synthetic)",
        "classes": entries,
    }


def source_taxonomy() -> Taxonomy:
    """The fine source taxonomy ``synth_source`` (8 train classes + ``unlabelled``)."""
    return Taxonomy.from_dict(
        _taxonomy_dict("synth_source", "Synthetic street, fine", list(SOURCE_CLASSES), UNLABELLED)
    )


def coarse_taxonomy() -> Taxonomy:
    """Extra A's taxonomy ``synth_coarse`` (ground, vehicle merged; 6 train classes)."""
    return Taxonomy.from_dict(
        _taxonomy_dict(
            "synth_coarse",
            "Synthetic street, coarse",
            [(n, c) for n, c, _ in COARSE_CLASSES],
            UNLABELLED,
        )
    )


def lidar_taxonomy() -> Taxonomy:
    """Extra B's taxonomy ``synth_lidar`` (no sky; 7 train classes + ``void``)."""
    return Taxonomy.from_dict(
        _taxonomy_dict(
            "synth_lidar",
            "Synthetic street, LiDAR-projected",
            [(n, c) for n, c, _ in LIDAR_CLASSES],
            VOID,
        )
    )


def _fine_lut(classes: tuple[tuple[str, tuple[int, int, int], tuple[int, ...]], ...]) -> np.ndarray:
    """``(256,)`` uint8 lookup fine id -> extra raw id (``IGNORE_INDEX`` where uncovered)."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for extra_id, (_, _, fine) in enumerate(classes):
        lut[list(fine)] = extra_id
    return lut


COARSE_LUT = _fine_lut(COARSE_CLASSES)
LIDAR_LUT = _fine_lut(LIDAR_CLASSES)

# --------------------------------------------------------------------------- domains


@dataclass(frozen=True)
class Domain:
    """Appearance of one dataset: scene palette and photometric transform.

    Attributes:
        name: identifier.
        sky: sky palette, ``"clear"`` (blue), ``"overcast"`` (grey) or ``"dusk"`` (orange/violet).
        sky_mix: how far the sky colours are from the clear palette towards ``sky``, ``[0, 1]``.
        tint: per-channel RGB gain (colour temperature), applied to ``[0, 1]`` images.
        brightness: additive offset after contrast, in ``[0, 1]`` units.
        contrast: contrast factor around mid-grey.
        gamma: output gamma (``> 1`` darkens mid-tones).
        saturation: saturation factor (``0`` = grey).
        haze: haze strength in ``[0, 1]`` (strongest at the horizon).
        haze_color: RGB haze colour in ``[0, 1]``.
        noise: std of per-pixel Gaussian noise in ``[0, 1]`` units.
        truck_car_share: probability that a truck is painted like a car (the source's
            trucks are white/yellow/orange boxes, so colour stops telling them apart).
        car_scale: size factor of cars (``> 1`` makes cars closer to trucks in size).
        jitter: per-image random spread of tint/brightness/contrast/haze.
        strength: range ``[lo, hi]`` of the per-image shift strength ``s``: each image is
            rendered in :meth:`towards` ``(s)``, between the clear source look (0) and this
            domain (1), so a dataset covers a continuum of shifts.
    """

    name: str
    sky: str = "clear"
    sky_mix: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    saturation: float = 1.0
    haze: float = 0.0
    haze_color: tuple[float, float, float] = (0.8, 0.8, 0.8)
    noise: float = 0.02
    truck_car_share: float = 0.0
    car_scale: float = 1.0
    jitter: float = 0.0
    strength: tuple[float, float] = (1.0, 1.0)

    def towards(self, s: float) -> Domain:
        """This domain at shift strength ``s`` in ``[0, 1]``: every numeric setting
        interpolated from :data:`CLEAR` (``s = 0``) to this domain's (``s = 1``)."""
        out = lerp_domains(CLEAR, self, s, name=self.name)
        return replace(out, sky=self.sky, jitter=self.jitter, strength=(1.0, 1.0))


def lerp_domains(a: Domain, b: Domain, t: float, *, name: str) -> Domain:
    """Numeric settings ``(1 - t) * a + t * b`` (tuples element-wise); ``sky`` from ``b``."""
    values = {}
    for f in fields(Domain):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) and isinstance(y, float):
            values[f.name] = (1 - t) * x + t * y
        elif isinstance(x, tuple):
            values[f.name] = tuple((1 - t) * u + t * v for u, v in zip(x, y, strict=True))
        else:
            values[f.name] = y
    values["name"] = name
    return Domain(**values)


#: Strength range of the extra datasets: every image between the source look and the
#: domain's full shift, so the teacher is right on the mild ones (where self-training
#: helps) and wrong on the strong ones (where the priors help).
EXTRA_STRENGTH: tuple[float, float] = (0.0, 0.7)
#: Strength range of the robustness set: mostly stronger shifts than the extras'.
WILD_STRENGTH: tuple[float, float] = (0.3, 0.9)

#: The source domain: clear day.
CLEAR = Domain("clear", sky="clear", sky_mix=0.0, noise=0.02, jitter=0.03)
#: Extra A: overcast, warm, hazy, washed-out (per image from mild to full).
OVERCAST = Domain(
    "overcast",
    sky="overcast",
    tint=(1.12, 1.0, 0.82),
    brightness=0.06,
    contrast=0.7,
    saturation=0.55,
    haze=0.55,
    haze_color=(0.78, 0.76, 0.72),
    noise=0.03,
    truck_car_share=1.0,
    car_scale=1.15,
    jitter=0.05,
    strength=EXTRA_STRENGTH,
)
#: Extra B: dark bluish dusk with strong contrast (per image from mild to full).
DUSK = Domain(
    "dusk",
    sky="dusk",
    tint=(0.78, 0.88, 1.22),
    brightness=-0.12,
    contrast=1.25,
    gamma=1.35,
    saturation=0.8,
    haze=0.2,
    haze_color=(0.35, 0.35, 0.5),
    noise=0.05,
    truck_car_share=1.0,
    car_scale=1.15,
    jitter=0.05,
    strength=EXTRA_STRENGTH,
)


def wild_domain(rng: np.random.Generator) -> Domain:
    """A random robustness-set domain: a random blend of :data:`OVERCAST` and
    :data:`DUSK`, with more noise and jitter, rendered at strengths :data:`WILD_STRENGTH`."""
    a = float(rng.uniform(0.0, 1.0))
    blend = lerp_domains(OVERCAST, DUSK, a, name="wild")
    return replace(
        blend,
        sky="overcast" if a < 0.5 else "dusk",
        noise=0.045,
        jitter=0.08,
        strength=WILD_STRENGTH,
    )


# --------------------------------------------------------------------------- rendering helpers

_CAR_COLORS = np.array(
    [
        [0.55, 0.08, 0.08],
        [0.1, 0.15, 0.45],
        [0.08, 0.08, 0.09],
        [0.62, 0.63, 0.66],
        [0.12, 0.32, 0.15],
        [0.35, 0.35, 0.38],
        [0.5, 0.3, 0.1],
    ],
    dtype=np.float32,
)
_TRUCK_COLORS = np.array(
    [[0.92, 0.92, 0.9], [0.9, 0.78, 0.15], [0.88, 0.45, 0.1], [0.85, 0.85, 0.8]], dtype=np.float32
)
_FACADE_COLORS = np.array(
    [
        [0.62, 0.52, 0.42],
        [0.55, 0.25, 0.2],
        [0.5, 0.5, 0.52],
        [0.78, 0.74, 0.66],
        [0.42, 0.4, 0.38],
        [0.7, 0.62, 0.5],
    ],
    dtype=np.float32,
)
_CLOTHES_COLORS = np.array(
    [
        [0.7, 0.1, 0.1],
        [0.1, 0.2, 0.6],
        [0.15, 0.15, 0.15],
        [0.85, 0.8, 0.2],
        [0.2, 0.5, 0.25],
        [0.9, 0.9, 0.9],
    ],
    dtype=np.float32,
)
_SKIN_COLORS = np.array([[0.86, 0.68, 0.56], [0.6, 0.42, 0.3], [0.4, 0.27, 0.2]], dtype=np.float32)
_SKY_PALETTES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    # top colour, horizon colour, cloud brightness
    "clear": ((0.25, 0.45, 0.85), (0.62, 0.78, 0.95), 0.95),
    "overcast": ((0.58, 0.58, 0.6), (0.72, 0.71, 0.7), 0.8),
    "dusk": ((0.22, 0.16, 0.38), (0.85, 0.5, 0.3), 0.55),
}


def value_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth random field ``(height, width)`` float32 in ``[0, 1]``: a ``cells``-wide
    random grid, bilinearly upsampled."""
    gh = max(2, int(round(cells * height / max(width, 1))) + 1)
    gw = max(2, cells + 1)
    grid = rng.random((gh, gw), dtype=np.float32)
    ys = np.linspace(0, gh - 1, height, dtype=np.float32)
    xs = np.linspace(0, gw - 1, width, dtype=np.float32)
    y0 = np.minimum(ys.astype(np.int64), gh - 2)
    x0 = np.minimum(xs.astype(np.int64), gw - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) * (1 - fy) + b * fx * (1 - fy) + c * (1 - fx) * fy + d * fx * fy).astype(
        np.float32
    )


@dataclass
class Canvas:
    """The scene being rendered.

    Attributes:
        rgb: ``(H, W, 3)`` float32 colours in ``[0, 1]`` (before the domain transform).
        label: ``(H, W)`` uint8 fine (source) class ids.
        closeness: ``(H, W)`` float32 in ``[0, 1]``: 0 at the horizon/sky, 1 at the camera
            (drives the haze).
        lidar_void: ``(H, W)`` bool, pixels a LiDAR-projected label would leave void
            (sky, windows, facade parts above :data:`LIDAR_MAX_HEIGHT`).
    """

    rgb: np.ndarray
    label: np.ndarray
    closeness: np.ndarray
    lidar_void: np.ndarray

    def paint(
        self,
        mask: np.ndarray,
        color: np.ndarray,
        cls: int,
        closeness: float | np.ndarray,
        cols: slice = slice(None),
    ) -> None:
        """Overwrite the pixels in ``mask`` with ``color`` (``(3,)`` or per pixel
        ``(H, w, 3)``), class ``cls`` and ``closeness``; they stop being LiDAR-void.

        ``mask``, a per-pixel ``color`` and ``closeness`` cover the columns ``cols`` of
        the canvas (``(H, w)``; all columns by default)."""
        if not mask.any():
            return
        rgb, label = self.rgb[:, cols], self.label[:, cols]
        near, void = self.closeness[:, cols], self.lidar_void[:, cols]
        rgb[mask] = color[mask] if np.ndim(color) == 3 else color
        label[mask] = cls
        near[mask] = closeness if np.ndim(closeness) == 0 else closeness[mask]
        void[mask] = False


@dataclass
class Street:
    """Geometry of the street: horizon row, vanishing column, road and sidewalk widths.

    The ground row ``y`` has depth parameter ``t = (y - horizon) / (H - horizon)`` in
    ``(0, 1]`` (1 at the bottom row); the road centre is at ``vx + shift * t`` and the
    road's half width is ``half_width * t`` pixels.
    """

    height: int
    width: int
    horizon: float
    vx: float
    shift: float
    half_width: float
    sidewalk: float

    def t_of_row(self, y: np.ndarray | float) -> np.ndarray | float:
        return (y - self.horizon) / (self.height - self.horizon)

    def row_of_t(self, t: np.ndarray | float) -> np.ndarray | float:
        return self.horizon + t * (self.height - self.horizon)

    def edge_t(self, x: np.ndarray, side: int) -> np.ndarray:
        """Depth parameter where the outer sidewalk edge of ``side`` (-1 left, +1 right)
        crosses column ``x``; ``<= 0`` where it never does."""
        denom = self.shift + side * self.half_width * (1 + self.sidewalk)
        return (x - self.vx) / denom


def _mixed_sky(domain: Domain) -> tuple[np.ndarray, np.ndarray, float]:
    """Top colour, horizon colour and cloud brightness of ``domain``'s sky."""
    c_top, c_hor, c_cloud = _SKY_PALETTES["clear"]
    d_top, d_hor, d_cloud = _SKY_PALETTES[domain.sky]
    m = domain.sky_mix
    top = (1 - m) * np.asarray(c_top, np.float32) + m * np.asarray(d_top, np.float32)
    hor = (1 - m) * np.asarray(c_hor, np.float32) + m * np.asarray(d_hor, np.float32)
    return top, hor, (1 - m) * c_cloud + m * d_cloud


def _render_sky(canvas: Canvas, rng: np.random.Generator, street: Street, domain: Domain) -> None:
    h, w = canvas.label.shape
    top, horizon_color, cloud = _mixed_sky(domain)
    ys = np.clip(np.arange(h, dtype=np.float32) / max(street.horizon, 1.0), 0, 1)[:, None, None]
    grad = np.asarray(top, np.float32) * (1 - ys) + np.asarray(horizon_color, np.float32) * ys
    clouds = value_noise(rng, h, w, 6) * 0.6 + value_noise(rng, h, w, 14) * 0.4
    amount = np.clip((clouds - 0.5) * 2.5, 0, 1)[..., None]
    color = grad * (1 - amount) + cloud * amount
    canvas.rgb[:] = np.broadcast_to(color, (h, w, 3))
    canvas.label[:] = SKY
    canvas.closeness[:] = 0.0
    canvas.lidar_void[:] = True


def _render_ground(canvas: Canvas, rng: np.random.Generator, street: Street) -> None:
    h, w = canvas.label.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = street.t_of_row(yy + 0.5)
    ground = t > 0
    ts = np.where(ground, t, 1.0)
    dx = xx + 0.5 - (street.vx + street.shift * ts)
    rel = dx / (street.half_width * ts)  # road edges at +-1
    depth = 1.0 / ts
    fine = rng.random((h, w), dtype=np.float32)

    # beyond the sidewalk: grass (vegetation), facades are drawn over it later
    grass = ground & (np.abs(rel) >= 1 + street.sidewalk)
    grass_col = (
        np.array([0.3, 0.45, 0.18], np.float32)
        * (0.75 + 0.5 * value_noise(rng, h, w, 20))[..., None]
    )
    canvas.paint(grass, grass_col * (0.85 + 0.3 * fine[..., None]), VEGETATION, ts)

    # sidewalk with tiles and a bright kerb
    side = ground & (np.abs(rel) >= 1) & (np.abs(rel) < 1 + street.sidewalk)
    tiles = ((np.mod(depth * 3.0, 1.0) < 0.12) | (np.mod(np.abs(rel) * 6.0, 1.0) < 0.1)).astype(
        np.float32
    )
    base = np.asarray(rng.uniform(0.5, 0.68) * np.array([1.0, 0.95, 0.88]), np.float32)
    side_col = base * (1 - 0.18 * tiles[..., None]) * (0.92 + 0.16 * fine[..., None])
    kerb = np.abs(rel) < 1.07
    side_col = np.where(kerb[..., None], np.float32(0.82), side_col)
    canvas.paint(side, side_col, SIDEWALK, ts)

    # road: asphalt with dashed centre line and solid edge lines
    road = ground & (np.abs(rel) < 1)
    asphalt = np.float32(rng.uniform(0.25, 0.36)) * (0.85 + 0.3 * value_noise(rng, h, w, 30))
    road_col = np.repeat((asphalt * (0.9 + 0.2 * fine))[..., None], 3, axis=2)
    dashes = (np.abs(rel) < 0.035) & (np.mod(depth * 1.5, 1.0) < 0.5)
    edges = (np.abs(rel) > 0.92) & (np.abs(rel) < 0.96)
    road_col[dashes | edges] = 0.88
    canvas.paint(road, road_col, ROAD, ts)


def _render_roadside(
    canvas: Canvas, rng: np.random.Generator, street: Street, domain: Domain
) -> None:
    """Facades and tree groups along both sides, standing on the outer sidewalk edge."""
    h, w = canvas.label.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xc = xx[0] + 0.5
    for side in (-1, 1):
        te = street.edge_t(xc, side)  # (W,)
        valid = te > 0.02
        u = np.where(valid, np.log(np.maximum(te, 1e-3)), -10.0)
        lo = np.log(0.02)
        bounds = [lo]
        while bounds[-1] < np.log(60.0):
            bounds.append(bounds[-1] + float(rng.uniform(0.25, 0.7)))
        for u0, u1 in zip(bounds[:-1], bounds[1:], strict=True):
            cols = valid & (u >= u0) & (u < u1)
            if not cols.any():
                continue
            kind = rng.choice(["building", "trees", "open"], p=[0.72, 0.2, 0.08])
            if kind == "open":
                continue
            y_edge = street.row_of_t(te)  # (W,) ground row of the facade
            if kind == "building":
                idx = np.flatnonzero(cols)
                sl = slice(int(idx[0]), int(idx[-1]) + 1)  # the facade's columns
                ys, te_s, u_s, y_edge_s = yy[:, sl] + 0.5, te[sl], u[sl], y_edge[sl]
                height_units = float(rng.uniform(1.2, 3.2))
                top = y_edge_s - height_units * street.half_width * te_s
                mask = (ys >= top[None, :]) & (ys < y_edge_s[None, :])
                if not mask.any():
                    continue
                base = _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))] * float(
                    rng.uniform(0.85, 1.1)
                )
                a = (u_s[None, :] - u0) / (u1 - u0)  # 0..1 across the facade
                elev = (y_edge_s[None, :] - ys) / np.maximum(
                    te_s[None, :] * street.half_width, 1e-3
                )
                nx = int(rng.integers(3, 8))
                floor = float(rng.uniform(0.28, 0.4))
                windows = (
                    (np.mod(a * nx, 1.0) > 0.28)
                    & (np.mod(a * nx, 1.0) < 0.72)
                    & (np.mod(elev / floor, 1.0) > 0.3)
                    & (np.mod(elev / floor, 1.0) < 0.75)
                    & (elev > floor)
                    & (elev < height_units - 0.1)
                )
                tex = 0.9 + 0.2 * value_noise(rng, h, ys.shape[1], 24)[..., None]
                col = base * tex
                glass = np.array([0.15, 0.2, 0.28], np.float32) * float(rng.uniform(0.7, 1.6))
                col = np.where(windows[..., None], glass, col)
                closeness = np.broadcast_to(np.clip(te_s, 0, 1)[None, :], mask.shape)
                canvas.paint(mask, col, BUILDING, closeness, cols=sl)
                canvas.lidar_void[:, sl][mask & (windows | (elev > LIDAR_MAX_HEIGHT))] = True
            else:
                _render_trees(canvas, rng, street, cols, te, yy, xx)


def _render_trees(
    canvas: Canvas,
    rng: np.random.Generator,
    street: Street,
    cols: np.ndarray,
    te: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
) -> None:
    h, w = canvas.label.shape
    idx = np.flatnonzero(cols)
    for _ in range(int(rng.integers(1, 4))):
        x0 = float(idx[rng.integers(len(idx))]) + 0.5
        t0 = float(te[min(int(x0), w - 1)])
        ground_y = float(street.row_of_t(t0))
        r = max(1.5, float(rng.uniform(0.5, 0.9)) * street.half_width * t0)
        cy = ground_y - r * float(rng.uniform(1.4, 2.0))
        sl = slice(max(0, int(x0 - 1.3 * r)), min(w, int(x0 + 1.3 * r) + 2))  # crown columns
        xs, ys = xx[:, sl] + 0.5, yy[:, sl] + 0.5
        wobble = value_noise(rng, h, xs.shape[1], 10) - 0.5
        crown = ((xs - x0) / r) ** 2 + ((ys - cy) / (1.1 * r)) ** 2 < 1 + 0.8 * wobble
        trunk = (np.abs(xs - x0) < max(0.6, 0.12 * r)) & (ys > cy) & (ys < ground_y)
        leaves = np.array([0.18, 0.36, 0.12], np.float32) * float(rng.uniform(0.7, 1.3))
        shade = 0.7 + 0.6 * value_noise(rng, h, xs.shape[1], 28)[..., None]
        near = min(t0, 1.0)
        canvas.paint(trunk, np.array([0.3, 0.2, 0.12], np.float32), VEGETATION, near, cols=sl)
        canvas.paint(crown, leaves * shade, VEGETATION, near, cols=sl)


def _render_vehicle(
    canvas: Canvas, rng: np.random.Generator, street: Street, domain: Domain, t0: float, truck: bool
) -> None:
    h, w = canvas.label.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy += 0.5
    xx += 0.5
    hw = street.half_width * t0
    lane = float(rng.choice([-0.5, 0.5])) + float(rng.uniform(-0.12, 0.12))
    cx = street.vx + street.shift * t0 + lane * hw
    bottom = float(street.row_of_t(t0))
    if truck:
        width, height = 0.78 * hw, 1.05 * hw
        palette = _CAR_COLORS if rng.random() < domain.truck_car_share else _TRUCK_COLORS
        color = palette[rng.integers(len(palette))]
        body = (
            (np.abs(xx - cx) < width / 2) & (yy < bottom - 0.12 * height) & (yy > bottom - height)
        )
        stripe = body & (yy > bottom - 0.3 * height) & (yy < bottom - 0.22 * height)
        col = np.broadcast_to(color, (h, w, 3)).copy()
        col[stripe] = 0.2
        panel = (np.abs(xx - cx) < 0.02 * width) & body
        col[panel] = color * 0.7
        wheel_r = 0.11 * width
    else:
        scale = domain.car_scale
        width, height = 0.52 * hw * scale, 0.42 * hw * scale
        color = _CAR_COLORS[rng.integers(len(_CAR_COLORS))]
        lower = (
            (np.abs(xx - cx) < width / 2)
            & (yy < bottom - 0.1 * height)
            & (yy > bottom - 0.55 * height)
        )
        frac = np.clip((bottom - 0.55 * height - yy) / (0.45 * height), 0, 1)
        cabin = (np.abs(xx - cx) < width / 2 * (0.92 - 0.3 * frac)) & (yy <= bottom - 0.55 * height)
        cabin &= yy > bottom - height
        body = lower | cabin
        col = np.broadcast_to(color, (h, w, 3)).copy()
        glass = (
            cabin
            & (np.abs(xx - cx) < width / 2 * (0.8 - 0.3 * frac))
            & (yy > bottom - 0.92 * height)
        )
        col[glass] = np.array([0.12, 0.14, 0.18], np.float32)
        lights = (
            lower
            & (np.abs(np.abs(xx - cx) - 0.4 * width) < 0.08 * width)
            & (yy < bottom - 0.38 * height)
        )
        col[lights] = np.array([0.85, 0.1, 0.08], np.float32)
        wheel_r = 0.12 * width
    wheels = np.zeros((h, w), bool)
    for sx in (-1, 1):
        wx = cx + sx * (width / 2 - wheel_r)
        wheels |= ((xx - wx) / wheel_r) ** 2 + (
            (yy - (bottom - wheel_r)) / (wheel_r * 1.1)
        ) ** 2 < 1
    col[wheels] = 0.06
    shade = 0.9 + 0.2 * value_noise(rng, h, w, 20)[..., None]
    canvas.paint(body | wheels, col * shade, TRUCK if truck else CAR, min(t0, 1.0))


def _render_person(canvas: Canvas, rng: np.random.Generator, street: Street, t0: float) -> None:
    h, w = canvas.label.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy += 0.5
    xx += 0.5
    hw = street.half_width * t0
    side = float(rng.choice([-1.0, 1.0]))
    rel = side * float(rng.uniform(1.08, 1.0 + street.sidewalk * 0.9))
    cx = street.vx + street.shift * t0 + rel * hw
    foot = float(street.row_of_t(t0))
    ph = 0.5 * hw * float(rng.uniform(0.9, 1.1))
    head_r = 0.09 * ph
    head = ((xx - cx) / head_r) ** 2 + ((yy - (foot - ph + head_r)) / head_r) ** 2 < 1
    torso = (np.abs(xx - cx) < 0.14 * ph) & (yy > foot - ph + 2 * head_r) & (yy < foot - 0.45 * ph)
    legs = (
        (np.abs(np.abs(xx - cx) - 0.07 * ph) < 0.05 * ph) & (yy >= foot - 0.45 * ph) & (yy < foot)
    )
    col = np.zeros((h, w, 3), np.float32)
    col[torso] = _CLOTHES_COLORS[rng.integers(len(_CLOTHES_COLORS))]
    col[legs] = _CLOTHES_COLORS[rng.integers(len(_CLOTHES_COLORS))] * 0.6
    col[head] = _SKIN_COLORS[rng.integers(len(_SKIN_COLORS))]
    canvas.paint(head | torso | legs, col, PERSON, min(t0, 1.0))


def _apply_domain(canvas: Canvas, rng: np.random.Generator, domain: Domain) -> np.ndarray:
    """Photometric domain transform: ``(H, W, 3)`` float in ``[0, 1]`` -> uint8 RGB."""
    j = domain.jitter
    img = canvas.rgb * (
        np.asarray(domain.tint, np.float32) * (1 + rng.uniform(-j, j, 3).astype(np.float32))
    )
    haze = float(np.clip(domain.haze + rng.uniform(-j, j), 0, 1))
    if haze > 0:
        weight = (haze * (1 - canvas.closeness) ** 2)[..., None]
        img = img * (1 - weight) + np.asarray(domain.haze_color, np.float32) * weight
    gray = img.mean(axis=2, keepdims=True)
    img = gray + domain.saturation * (img - gray)
    contrast = domain.contrast * (1 + float(rng.uniform(-j, j)))
    img = (img - 0.5) * contrast + 0.5 + domain.brightness + float(rng.uniform(-j, j))
    img = np.clip(img, 0, 1) ** domain.gamma
    img = img + rng.normal(0.0, domain.noise, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_scene(
    rng: np.random.Generator, *, image_size: tuple[int, int], domain: Domain
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one street scene.

    Args:
        rng: random generator (the scene is a pure function of its state).
        image_size: ``(W, H)`` in pixels.
        domain: appearance.

    Returns:
        ``(image, fine_label, lidar_void)``: ``(H, W, 3)`` uint8 RGB, ``(H, W)`` uint8 source
        class ids ``0..7``, ``(H, W)`` bool pixels a LiDAR-projected label leaves void.
    """
    w, h = image_size
    if domain.strength != (1.0, 1.0):
        domain = domain.towards(float(rng.uniform(*domain.strength)))
    canvas = Canvas(
        rgb=np.zeros((h, w, 3), np.float32),
        label=np.zeros((h, w), np.uint8),
        closeness=np.zeros((h, w), np.float32),
        lidar_void=np.zeros((h, w), bool),
    )
    street = Street(
        height=h,
        width=w,
        horizon=float(h * rng.uniform(0.36, 0.48)),
        vx=float(w * rng.uniform(0.4, 0.6)),
        shift=float(w * rng.uniform(-0.12, 0.12)),
        half_width=float(w * rng.uniform(0.3, 0.42)),
        sidewalk=float(rng.uniform(0.3, 0.55)),
    )
    _render_sky(canvas, rng, street, domain)
    _render_ground(canvas, rng, street)
    _render_roadside(canvas, rng, street, domain)
    # objects, far to near (painter's algorithm)
    objects: list[tuple[float, Callable[[float], None]]] = []
    for _ in range(int(rng.integers(1, 4))):
        truck = bool(rng.random() < 0.4)
        objects.append(
            (
                float(rng.uniform(0.18, 0.9)),
                lambda t, tr=truck: _render_vehicle(canvas, rng, street, domain, t, tr),
            )
        )
    for _ in range(int(rng.integers(0, 4))):
        objects.append(
            (float(rng.uniform(0.25, 0.95)), lambda t: _render_person(canvas, rng, street, t))
        )
    for t0, draw in sorted(objects, key=lambda o: o[0]):
        draw(t0)
    image = _apply_domain(canvas, rng, domain)
    return image, canvas.label.copy(), canvas.lidar_void.copy()


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class WorldSizes:
    """Number of images per dataset split."""

    source_train: int = 40
    source_val: int = 40
    extra_a: int = 200
    extra_b: int = 200
    wild: int = 80

    @classmethod
    def tiny(cls) -> WorldSizes:
        """A few images per split, for tests."""
        return cls(source_train=4, source_val=3, extra_a=4, extra_b=4, wild=3)


@dataclass
class WorldDataset:
    """One generated dataset in the folder layout.

    Attributes:
        name: dataset name (also its folder name under the world root).
        root: folder holding ``images/``, ``labels/`` and ``taxonomy.yaml``.
        splits: ``{split: number of images}``.
        taxonomy: path of ``taxonomy.yaml``.
        mapping: path of the ontology mapping to the source taxonomy (extras only).
        domain: name of the appearance domain.
    """

    name: str
    root: Path
    splits: dict[str, int]
    taxonomy: Path
    mapping: Path | None = None
    domain: str = ""


@dataclass
class WorldPaths:
    """Where :func:`generate_world` wrote everything.

    Attributes:
        root: the world folder.
        datasets: ``{"source", "extra_a", "extra_b", "wild"}`` -> :class:`WorldDataset`.
        rendered: ``True`` when this call rendered the world, ``False`` when it reused
            a complete world with the same parameters.
    """

    root: Path
    datasets: dict[str, WorldDataset] = field(default_factory=dict)
    rendered: bool = True

    @property
    def source_taxonomy(self) -> Path:
        return self.datasets["source"].taxonomy

    @property
    def extras(self) -> list[WorldDataset]:
        return [d for d in self.datasets.values() if d.mapping is not None]


_MAPPINGS: dict[str, dict] = {
    "extra_a": {
        "source": "../source/taxonomy.yaml",
        "extra": "../extra_a/taxonomy.yaml",
        "unlabelled": "ignore",
        "mapping": {
            "ground": ["road", "sidewalk"],
            "building": ["building"],
            "vegetation": ["vegetation"],
            "sky": ["sky"],
            "vehicle": ["car", "truck"],
            "person": ["person"],
        },
    },
    "extra_b": {
        "source": "../source/taxonomy.yaml",
        "extra": "../extra_b/taxonomy.yaml",
        "unlabelled": "constrained",
        "mapping": {
            "road": ["road"],
            "sidewalk": ["sidewalk"],
            "building": ["building"],
            "vegetation": ["vegetation"],
            "car": ["car"],
            "truck": ["truck"],
            "person": ["person"],
            VOID: ["sky", "building"],
        },
    },
}

_MAPPING_HEADERS = {
    "extra_a": "# extra_a (coarse policy) -> source: 'ground' may be road or sidewalk, 'vehicle' car or truck.\n",
    "extra_b": (
        "# extra_b (LiDAR-projected labels) -> source. Its void hides the sky, building windows\n"
        "# and upper facades systematically, so void pixels are constrained to {sky, building}.\n"
    ),
}


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


def _fine_labels(fine: np.ndarray, void: np.ndarray) -> np.ndarray:
    return fine


def _coarse_labels(fine: np.ndarray, void: np.ndarray) -> np.ndarray:
    return COARSE_LUT[fine]


def _lidar_labels(fine: np.ndarray, void: np.ndarray) -> np.ndarray:
    out = LIDAR_LUT[fine]
    out[void] = IGNORE_INDEX
    return out


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
    world = _describe(out_dir, sizes)
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
        "source": _fine_labels,
        "extra_a": _coarse_labels,
        "extra_b": _lidar_labels,
        "wild": _fine_labels,
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
            _write_yaml(ds.mapping, _MAPPINGS[name], _MAPPING_HEADERS[name])
    write_text_atomic(marker, json.dumps(params))
    return world


def _describe(out_dir: Path, sizes: WorldSizes) -> WorldPaths:
    def ds(name: str, splits: dict[str, int], domain: str, mapped: bool = False) -> WorldDataset:
        root = out_dir / name
        mapping = out_dir / "mappings" / f"{name}_to_source.yaml" if mapped else None
        return WorldDataset(name, root, splits, root / "taxonomy.yaml", mapping, domain)

    return WorldPaths(
        root=out_dir,
        datasets={
            "source": ds(
                "source", {"train": sizes.source_train, "val": sizes.source_val}, CLEAR.name
            ),
            "extra_a": ds("extra_a", {"train": sizes.extra_a}, OVERCAST.name, mapped=True),
            "extra_b": ds("extra_b", {"train": sizes.extra_b}, DUSK.name, mapped=True),
            "wild": ds("wild", {"val": sizes.wild}, "wild"),
        },
    )
