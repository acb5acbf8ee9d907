"""Preview panels (Fig. 1 style) of the real-data benchmarks: copied from a pseudo-label
folder to ``benchmarks/figures`` and named in the results (never committed)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common.paths import FIGURES

#: Largest preview PNG copied into ``benchmarks/figures`` (bytes).
MAX_FIGURE_BYTES = 300_000


def previews_note(figures: Sequence[Path]) -> list[str]:
    """Markdown lines naming the preview panels the run wrote (not linked: they show
    dataset images whose licences forbid redistribution, so they are not committed)."""
    if not figures:
        return []
    names = ", ".join(f"`{f.name}`" for f in figures)
    return [
        "### Preview panels (Fig. 1 style)",
        "",
        "Panels (image | extra ground truth | teacher | pseudo-label) were written to "
        f"`benchmarks/figures/` on the machine that ran this: {names}. They are not "
        "committed, because they show dataset images whose licences forbid "
        "redistribution.",
        "",
    ]


def copy_previews(folder: Path, prefix: str, count: int, dest: Path = FIGURES) -> list[Path]:
    """Copy up to ``count`` preview panels of a pseudo-label folder to ``dest`` as
    ``<prefix>_<n>.png``, shrinking any over :data:`MAX_FIGURE_BYTES`."""
    from PIL import Image

    sources = sorted((folder / "previews").rglob("*.png"))[:count]
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for n, src in enumerate(sources):
        target = dest / f"{prefix}_{n}.png"
        shutil.copyfile(src, target)
        scale = 1.0
        while target.stat().st_size > MAX_FIGURE_BYTES and scale > 0.2:
            scale *= 0.75
            with Image.open(src) as im:
                small = im.convert("RGB").resize(
                    (max(1, int(im.width * scale)), max(1, int(im.height * scale)))
                )
                small = small.quantize(colors=128)
                small.save(target, optimize=True)
        written.append(target)
    return written
