"""Picture of an ontology mapping: extra labels (rows) x source classes (columns).

* a filled cell: pixels with that extra label may be that source class
  (``Ontology.allowed``); rows of ignored extra classes are drawn by their
  ``unlabelled`` policy (lighter fill when the policy, not a row, allows them);
* a dot: the projection used for evaluation in the extra taxonomy
  (``Ontology.projection``: source class -> extra class);
* a grey column name: the source class has no counterpart in the extra taxonomy
  (predicting it is a miss in projected evaluation);
* a hatched row: pixels of that label are written as ignore.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy import IGNORE_ROW, Ontology

ALLOWED_COLOR = "#2b6ca3"
POLICY_COLOR = "#a8c8e4"
IGNORE_ROW_COLOR = "#ececec"
GRID_COLOR = "#c8c8c8"
NO_COUNTERPART_COLOR = "#9a9a9a"


def _row_labels(ontology: Ontology) -> list[str]:
    labels = []
    for cls in ontology.extra.classes:
        row = ontology.rows.get(cls.name)
        if cls.ignore:
            labels.append(f"{cls.name} (ignored)")
        elif row == IGNORE_ROW:
            labels.append(f"{cls.name} (-> ignore)")
        else:
            labels.append(cls.name)
    return labels


def cell_kinds(ontology: Ontology) -> np.ndarray:
    """``(R, K)`` int: 0 empty, 1 allowed by a row, 2 allowed by the unlabelled policy,
    3 row written as ignore."""
    classes = ontology.extra.classes
    kinds = np.zeros((len(classes), ontology.source.num_classes), dtype=np.int64)
    for r, cls in enumerate(classes):
        allowed = ontology.allowed[cls.id]
        row = ontology.rows.get(cls.name)
        if cls.ignore and ontology.unlabelled == "unconstrained":
            kinds[r, allowed] = 2
        elif cls.ignore and ontology.unlabelled == "ignore":
            kinds[r, :] = 3
        elif row == IGNORE_ROW or not allowed.any():
            kinds[r, :] = 3
        else:
            kinds[r, allowed] = 1
    return kinds


def plot_ontology_matrix(
    ontology: Ontology,
    out_path: str | Path,
    *,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Draw the mapping as a matrix and save it as a PNG (matplotlib, Agg backend).

    Args:
        ontology: the mapping to draw.
        out_path: PNG file to write (parent folders are created).
        title: picture title (default: ``"<extra> -> <source>"`` with the file name).
        dpi: resolution of the saved picture.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    source, extra = ontology.source, ontology.extra
    kinds = cell_kinds(ontology)
    num_rows, num_cols = kinds.shape
    row_labels = _row_labels(ontology)
    col_labels = source.train_names

    fill = {
        0: (1.0, 1.0, 1.0),
        1: to_rgb(ALLOWED_COLOR),
        2: to_rgb(POLICY_COLOR),
        3: to_rgb(IGNORE_ROW_COLOR),
    }
    picture = np.array([[fill[int(k)] for k in row] for row in kinds], dtype=np.float64)

    longest_row = max(len(s) for s in row_labels)
    longest_col = max(len(s) for s in col_labels)
    width = 0.36 * num_cols + 0.085 * longest_row + 1.6
    height = 0.36 * num_rows + 0.075 * longest_col + 2.4
    fig, ax = plt.subplots(figsize=(max(width, 8.0), max(height, 4.5)))
    ax.imshow(picture, aspect="equal", interpolation="nearest")

    # grid between cells
    ax.set_xticks(np.arange(-0.5, num_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, num_rows, 1), minor=True)
    ax.grid(which="minor", color=GRID_COLOR, linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_color(GRID_COLOR)

    # hatched "written as ignore" rows
    for r in range(num_rows):
        if (kinds[r] == 3).all():
            ax.add_patch(
                Rectangle(
                    (-0.5, r - 0.5),
                    num_cols,
                    1,
                    fill=False,
                    hatch="////",
                    edgecolor="#b0b0b0",
                    linewidth=0,
                )
            )

    # projection dots: source class k -> extra train id e
    row_of_train = {c.train_id: r for r, c in enumerate(extra.classes) if not c.ignore}
    no_counterpart = []
    for k, e in enumerate(ontology.projection.tolist()):
        if e == IGNORE_INDEX:
            no_counterpart.append(k)
            continue
        ax.plot(
            k, row_of_train[e], marker="o", markersize=5.5, markerfacecolor="white",
            markeredgecolor="#1a1a1a", markeredgewidth=0.9, linestyle="none",
        )  # fmt: skip

    # labels with colour swatches, drawn as texts next to the matrix (in data units, so
    # that swatch and name keep their places whatever the figure size)
    ax.set_xticks([])
    ax.set_yticks([])
    swatch = dict(clip_on=False, linewidth=0.5, edgecolor="#606060")
    for k, (name, color) in enumerate(zip(col_labels, source.train_colors, strict=True)):
        ax.add_patch(
            Rectangle((k - 0.3, num_rows - 0.5 + 0.15), 0.6, 0.45, facecolor=color / 255, **swatch)
        )
        grey = k in no_counterpart
        ax.text(
            k + 0.2, num_rows - 0.5 + 0.8, name, rotation=55, ha="right", va="top", rotation_mode="anchor",
            fontsize=8.5, color=NO_COUNTERPART_COLOR if grey else "black", fontstyle="italic" if grey else "normal",
        )  # fmt: skip
    for r, (cls, label) in enumerate(zip(extra.classes, row_labels, strict=True)):
        ax.add_patch(
            Rectangle(
                (-0.5 - 0.6, r - 0.3), 0.45, 0.6, facecolor=np.asarray(cls.color) / 255, **swatch
            )
        )
        ax.text(
            -0.5 - 0.8, r, label, ha="right", va="center", fontsize=8.5,
            color="#555555" if cls.ignore else "black",
        )  # fmt: skip
    ax.set_xlim(-0.5, num_cols - 0.5)
    ax.set_ylim(num_rows - 0.5, -0.5)

    ax.text(
        (num_cols - 1) / 2, -0.5 - 0.35, f"columns: source classes ({source.name})    rows: extra labels ({extra.name})",
        ha="center", va="bottom", fontsize=8.5, color="#333333",
    )  # fmt: skip
    origin = "" if ontology.origin.startswith("<") else f"{Path(ontology.origin).name}  \u00b7  "
    heading = title or f"Ontology mapping {extra.name} \u2192 {source.name}"
    ax.set_title(
        f"{heading}\n{origin}unlabelled: {ontology.unlabelled}",
        fontsize=10,
        pad=26,
    )

    handles = [
        Patch(facecolor=ALLOWED_COLOR, edgecolor=GRID_COLOR, label="allowed source class"),
        Line2D([], [], marker="o", markersize=5.5, markerfacecolor="white", markeredgecolor="#1a1a1a",
               linestyle="none", label=f"projection for evaluation (source class \u2192 {extra.name} label)"),
    ]  # fmt: skip
    if (kinds == 2).any():
        handles.append(
            Patch(
                facecolor=POLICY_COLOR, edgecolor=GRID_COLOR, label="allowed by 'unlabelled' policy"
            )
        )
    if (kinds == 3).any():
        handles.append(
            Patch(
                facecolor=IGNORE_ROW_COLOR,
                hatch="////",
                edgecolor="#b0b0b0",
                label="written as ignore",
            )
        )
    if no_counterpart:
        handles.append(
            Patch(
                facecolor="none",
                edgecolor="none",
                label=f"grey italic: no counterpart in {extra.name} (a miss)",
            )
        )
    fig.legend(
        handles=handles, loc="lower center", ncol=min(len(handles), 2), fontsize=8,
        frameon=False, handlelength=1.4, columnspacing=1.6,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0.035 * ((len(handles) + 1) // 2) + 0.01, 1, 1))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
