"""Appearance domains of the world: palette and photometric settings per dataset."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np


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
