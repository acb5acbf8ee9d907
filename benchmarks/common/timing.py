"""Side-by-side timing: the sides of a comparison run interleaved (the order flips every
pair, so a drift of the machine's load hits both alike) and are summarised by medians;
the step times of a Lightning training run."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import lightning as L


def interleaved(sides: dict[str, Callable[[], object]], pairs: int) -> dict[str, list[float]]:
    """Run every side once per pair, in the given order on even pairs and reversed on odd
    ones; returns each side's wall times in seconds (one per pair)."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for i in range(pairs):
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    """The median of ``values`` (non-empty)."""
    return statistics.median(values)


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``"0.42 0.51 0.60"``."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


class StepTimes(L.Callback):
    """Wall time between the ends of consecutive training steps (loading included)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last: float | None = None

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now
