"""The static street: sky with clouds, road, sidewalks, grass, facades and trees."""

from __future__ import annotations

import numpy as np

from labelbridge.world.canvas import Canvas, Street, value_noise
from labelbridge.world.domains import Domain
from labelbridge.world.taxonomies import (
    BUILDING,
    LIDAR_MAX_HEIGHT,
    ROAD,
    SIDEWALK,
    SKY,
    VEGETATION,
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
_SKY_PALETTES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    # top colour, horizon colour, cloud brightness
    "clear": ((0.25, 0.45, 0.85), (0.62, 0.78, 0.95), 0.95),
    "overcast": ((0.58, 0.58, 0.6), (0.72, 0.71, 0.7), 0.8),
    "dusk": ((0.22, 0.16, 0.38), (0.85, 0.5, 0.3), 0.55),
}


def _mixed_sky(domain: Domain) -> tuple[np.ndarray, np.ndarray, float]:
    """Top colour, horizon colour and cloud brightness of ``domain``'s sky."""
    c_top, c_hor, c_cloud = _SKY_PALETTES["clear"]
    d_top, d_hor, d_cloud = _SKY_PALETTES[domain.sky]
    m = domain.sky_mix
    top = (1 - m) * np.asarray(c_top, np.float32) + m * np.asarray(d_top, np.float32)
    hor = (1 - m) * np.asarray(c_hor, np.float32) + m * np.asarray(d_hor, np.float32)
    return top, hor, (1 - m) * c_cloud + m * d_cloud


def render_sky(canvas: Canvas, rng: np.random.Generator, street: Street, domain: Domain) -> None:
    """Fill the whole canvas with ``domain``'s sky (gradient and clouds), LiDAR-void."""
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


def render_ground(canvas: Canvas, rng: np.random.Generator, street: Street) -> None:
    """Paint grass, sidewalks with kerbs and the marked road below the horizon."""
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


def render_roadside(
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
