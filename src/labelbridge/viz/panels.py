"""Fig. 1-style panels: image | extra ground truth | teacher prediction | pseudo-label.

One row of four pictures with titles, and below them a legend of the classes present:
the extra dataset's classes in the ground truth, the source classes in the teacher's
prediction and the pseudo-label. Ignored pixels are drawn black. Uses matplotlib's
object API (no pyplot state), so panels can be drawn from worker threads.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from labelbridge.constants import IGNORE_INDEX
from labelbridge.files import write_bytes_atomic
from labelbridge.taxonomy import Taxonomy

#: Colour of ignored pixels in every panel.
IGNORE_COLOR: tuple[int, int, int] = (0, 0, 0)


def _present(train_ids: np.ndarray, num_classes: int) -> list[int]:
    values = np.unique(train_ids)
    return [int(v) for v in values if v < num_classes]


def _handles(tax: Taxonomy, ids: list[int]) -> list[Patch]:
    return [
        Patch(
            facecolor=np.asarray(tax.train_colors[i]) / 255.0,
            edgecolor="0.3",
            label=tax.train_names[i],
        )
        for i in ids
    ]


def _legend(fig: Figure, handles: list[Patch], *, x: float, top: float, title: str) -> None:
    """A titled legend of ``handles`` (up to 4 rows) with its top-left corner at ``(x, top)``
    in figure coordinates; nothing when there are no handles."""
    if not handles:
        return
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(x, top),
        ncol=max(1, (len(handles) + 3) // 4),
        fontsize=8,
        title=title,
        title_fontsize=8,
        frameon=False,
    )


def render_panel(
    image: np.ndarray,
    extra_gt: np.ndarray | None,
    teacher: np.ndarray,
    pseudo: np.ndarray,
    *,
    source: Taxonomy,
    extra: Taxonomy,
    title: str = "",
    priors: bool = True,
    dpi: int = 100,
) -> bytes:
    """Draw one panel row and return it as PNG bytes.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        extra_gt: ``(H, W)`` int raw ids of the extra taxonomy, or ``None`` (unlabelled).
        teacher: ``(H, W)`` source train ids, the teacher's unconstrained argmax.
        pseudo: ``(H, W)`` source train ids or ``IGNORE_INDEX``, the written pseudo-label.
        source: the teacher's taxonomy (colours of ``teacher`` and ``pseudo``).
        extra: the extra dataset's taxonomy (colours of ``extra_gt``).
        title: figure title (e.g. the dataset and image key).
        priors: whether the pseudo-label used priors (named in its panel title).
        dpi: output resolution; the figure is about 16 x 4.5 inches.

    Returns:
        PNG bytes.
    """
    h, w = image.shape[:2]
    pw = 4.0
    ph = pw * h / w
    legend_h = 1.25
    fig = Figure(figsize=(4 * pw, ph + legend_h + 0.6), dpi=dpi)
    FigureCanvasAgg(fig)
    top = 1.0 - 0.45 / (ph + legend_h + 0.6)
    bottom = legend_h / (ph + legend_h + 0.6)
    axes = fig.subplots(
        1,
        4,
        gridspec_kw={"left": 0.005, "right": 0.995, "top": top, "bottom": bottom, "wspace": 0.02},
    )
    changed = int(((pseudo != teacher) & (pseudo != IGNORE_INDEX)).sum())
    ignored = int((pseudo == IGNORE_INDEX).sum())
    if extra_gt is not None:
        gt_train = extra.to_train_ids(extra_gt, unknown_as_ignore=True)
        gt_rgb = extra.colorize(gt_train, ignore_color=IGNORE_COLOR)
    else:
        gt_train = np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
        gt_rgb = np.zeros((h, w, 3), dtype=np.uint8)
    pictures = [
        (image, "image"),
        (
            gt_rgb,
            f"extra ground truth ({extra.name})"
            if extra_gt is not None
            else "no extra ground truth",
        ),
        (
            source.colorize(teacher, ignore_color=IGNORE_COLOR),
            f"teacher prediction ({source.name})",
        ),
        (
            source.colorize(pseudo, ignore_color=IGNORE_COLOR),
            f"pseudo-label, {'with priors' if priors else 'no priors'}\n"
            f"{100.0 * changed / (h * w):.1f}% changed, {100.0 * ignored / (h * w):.1f}% ignore",
        ),
    ]
    for ax, (pic, name) in zip(axes, pictures, strict=True):
        ax.imshow(pic, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11, y=1.0 - 0.05 / (ph + legend_h + 0.6), va="top")
    ignore_patch = Patch(
        facecolor=np.asarray(IGNORE_COLOR) / 255.0, edgecolor="0.3", label="ignore"
    )
    extra_handles = _handles(extra, _present(gt_train, extra.num_classes))
    src_ids = sorted(
        set(_present(teacher, source.num_classes)) | set(_present(pseudo, source.num_classes))
    )
    src_handles = _handles(source, src_ids) + ([ignore_patch] if ignored else [])
    _legend(fig, extra_handles, x=0.25, top=bottom - 0.01, title=f"{extra.name} (ground truth)")
    _legend(
        fig, src_handles, x=0.5, top=bottom - 0.01, title=f"{source.name} (teacher, pseudo-label)"
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_panel(path: str | Path, **kwargs: object) -> Path:
    """Render with :func:`render_panel` (same keyword arguments) and write ``path``."""
    path = Path(path)
    write_bytes_atomic(path, render_panel(**kwargs))  # type: ignore[arg-type]
    return path
