"""Progress of long work, on stderr, with an ETA: a tqdm bar in a terminal, otherwise one
log line every :func:`line_interval` seconds (a batch job's log file gets readable lines
instead of carriage-return redraws, and a user tailing it sees the work move).

Every long loop of labelbridge (evaluation, pseudo-labelling, dataset preparation,
``ontology suggest``) counts through :class:`Progress`; training reports through
:class:`labelbridge.engine.callbacks.ProgressLines`, which formats with
:func:`format_duration` and paces itself with :func:`line_interval`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

log = logging.getLogger(__name__)

#: Environment variable: seconds between progress lines when stderr is not a terminal.
INTERVAL_ENV = "LABELBRIDGE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0

T = TypeVar("T")


def line_interval() -> float:
    """Seconds between progress lines (``$LABELBRIDGE_PROGRESS_INTERVAL``, default 30).

    Raises:
        ValueError: the variable is set but not a positive number.
    """
    raw = os.environ.get(INTERVAL_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"${INTERVAL_ENV}={raw!r}: expected a positive number of seconds")
    return value


def stderr_is_terminal() -> bool:
    """Whether stderr is attached to a terminal (then bars redraw in place)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def format_duration(seconds: float) -> str:
    """``'42s'``, ``'3m05s'``, ``'2h07m'`` (``'?'`` for an unknown or infinite time)."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Counts ``total`` units of work named ``desc``.

    In a terminal it draws a tqdm bar on stderr. Otherwise it logs
    ``"<desc>: <n>/<total> <unit> (<pct>%), <elapsed> elapsed, <rate> <unit>/s, about
    <eta> left"`` when :func:`line_interval` seconds have passed since the last line,
    and on :meth:`close` a last line (unless the last one logged says the same). ``initial`` units (resumed work) count as done but
    not into the rate.

    Use as a context manager, or call :meth:`close`; :meth:`track` wraps an iterable.
    """

    def __init__(
        self,
        *,
        total: int | None,
        desc: str,
        unit: str = "img",
        initial: int = 0,
        enabled: bool = True,
        leave: bool = True,
    ) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self._start_n = initial
        self.enabled = enabled
        self._bar: Any = None
        self._closed = False
        self._logged_n: int | None = None  # count at the last line logged
        self._start = self._last_line = time.monotonic()
        self._interval = line_interval() if enabled else DEFAULT_INTERVAL_S
        if enabled and stderr_is_terminal():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit=unit,
                file=sys.stderr,
                dynamic_ncols=True,
                leave=leave,
            )

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.n += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line, self._logged_n = now, self.n
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The progress line for the count so far."""
        now = time.monotonic() if now is None else now
        elapsed = now - self._start
        done = self.n - self._start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        pct = f" ({100.0 * self.n / self.total:.0f}%)" if self.total else ""
        text = f"{self.desc}: {count} {self.unit}{pct}, {format_duration(elapsed)} elapsed"
        if done > 0:
            text += f", {rate:.3g} {self.unit}/s"
            if self.total is not None and self.n < self.total:
                text += f", about {format_duration((self.total - self.n) / rate)} left"
        return text

    def close(self) -> None:
        """End the bar, or log the last line (nothing when disabled or closed before)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self._logged_n != self.n:
            log.info("%s", self.line())

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Yield ``items``, counting one unit per item; closes at the end."""
        try:
            for item in items:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
