"""One rendered scene: the street, then vehicles and pedestrians far to near, then the
domain's photometric transform."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from labelbridge.world.canvas import Canvas, Street, value_noise
from labelbridge.world.domains import Domain
from labelbridge.world.street import render_ground, render_roadside, render_sky
from labelbridge.world.taxonomies import CAR, PERSON, TRUCK

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


def apply_domain(canvas: Canvas, rng: np.random.Generator, domain: Domain) -> np.ndarray:
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
    render_sky(canvas, rng, street, domain)
    render_ground(canvas, rng, street)
    render_roadside(canvas, rng, street, domain)
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
    image = apply_domain(canvas, rng, domain)
    return image, canvas.label.copy(), canvas.lidar_void.copy()
