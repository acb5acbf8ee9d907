"""Heat-map of a contingency table (extra labels x teacher classes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_contingency(
    shares: np.ndarray,
    row_names: list[str],
    col_names: list[str],
    out_path: str | Path,
    *,
    title: str = "",
    chosen: dict[str, list[str]] | None = None,
) -> None:
    """Save a row-normalised heat-map; cells of proposed classes are outlined.

    Args:
        shares: ``(R, C)`` values in ``0..1`` (share of each row's pixels).
        row_names: ``R`` extra label names.
        col_names: ``C`` source class names.
        out_path: PNG file.
        chosen: ``{row name: [column names]}`` to outline.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    r, c = shares.shape
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * c + 3), max(3.0, 0.4 * r + 2)))
    im = ax.imshow(shares, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(c), col_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(r), row_names, fontsize=8)
    for i in range(r):
        for j in range(c):
            if shares[i, j] >= 0.01:
                ax.text(
                    j,
                    i,
                    f"{100 * shares[i, j]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if shares[i, j] < 0.6 else "black",
                )
    for i, name in enumerate(row_names):
        for col in (chosen or {}).get(name, []):
            if col in col_names:
                j = col_names.index(col)
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5)
                )
    ax.set_xlabel("teacher class (source taxonomy)")
    ax.set_ylabel("extra ground-truth label")
    ax.set_title(title or "share of each extra label's pixels per teacher class (%)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
