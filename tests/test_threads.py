"""The ordered thread map: order, bounded look-ahead, errors at their place."""

from __future__ import annotations

import threading
import time

import pytest

from labelbridge.threads import default_workers, ordered_map


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_results_keep_the_items_order(workers: int) -> None:
    def slow_square(x: int) -> int:
        time.sleep(0.002 * (5 - x % 5))  # later items finish first
        return x * x

    assert list(ordered_map(slow_square, range(20), workers=workers)) == [x * x for x in range(20)]


def test_items_are_consumed_at_most_depth_ahead() -> None:
    pulled: list[int] = []

    def items():
        for i in range(100):
            pulled.append(i)
            yield i

    results = ordered_map(lambda x: x, items(), workers=2, depth=3)
    assert next(results) == 0
    time.sleep(0.05)
    assert len(pulled) == 4  # 3 queued ahead, then one more for the one handed out
    results.close()


def test_an_error_is_raised_at_its_item_and_later_work_is_cancelled() -> None:
    done: list[int] = []
    lock = threading.Lock()

    def work(x: int) -> int:
        if x == 2:
            raise ValueError("item 2 is bad")
        time.sleep(0.01)
        with lock:
            done.append(x)
        return x

    got: list[int] = []
    with pytest.raises(ValueError, match="item 2 is bad"):
        for r in ordered_map(work, range(50), workers=2, depth=4):
            got.append(r)
    assert got == [0, 1]
    assert len(done) < 10  # the queue behind the error was cancelled, not run to the end


def test_default_workers_is_bounded() -> None:
    assert 1 <= default_workers(limit=3) <= 3
    with pytest.raises(ValueError, match="workers must be >= 0"):
        list(ordered_map(abs, [1], workers=-1))
