"""A toy preparer for the engine tests (importable by a subprocess that gets killed).

The "published" form is one text file per sample, ``src/<n>.txt`` holding ``H W V``; the
conversion writes a ``(H, W)`` PNG filled with V. ``TOY_DELAY`` seconds per task slow it
down so a kill lands in the middle.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from labelbridge.data.base import CORRUPT, SampleError
from labelbridge.data.prepare import PREPARERS, Preparer, PrepareTask, register_preparer
from labelbridge.files import encode_label_png

TOY = "toy_prepare"


class ToyPreparer(Preparer):
    name = TOY
    splits = ("train",)

    def tasks(self, split: str) -> list[PrepareTask]:
        return [
            PrepareTask(p.stem, (f"labels/{p.stem}.png",), str(p))
            for p in sorted((self.root / "src").glob("*.txt"))
        ]

    def convert(self, task: PrepareTask) -> dict[str, bytes]:
        time.sleep(float(os.environ.get("TOY_DELAY", "0")))
        try:
            h, w, v = (int(x) for x in Path(task.source).read_text().split())
        except ValueError as exc:
            raise SampleError(task.source, CORRUPT, f"not 'H W V': {exc}") from None
        return {task.outputs[0]: encode_label_png(np.full((h, w), v, np.uint8))}


def install() -> None:
    if TOY not in PREPARERS:
        register_preparer(ToyPreparer)


def write_source(root: Path, n: int) -> None:
    (root / "src").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "src" / f"{i:04d}.txt").write_text(f"{3 + i % 4} {5 + i % 3} {i % 200}\n")
