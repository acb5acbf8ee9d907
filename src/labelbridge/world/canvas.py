"""Drawing primitives of a scene: smooth noise, the canvas being painted, the street."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
