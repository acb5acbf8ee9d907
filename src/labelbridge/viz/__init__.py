"""Pictures: palettes and overlays, ontology-matrix plots, Fig. 1-style panels.

Depends only on the taxonomy package, numpy and matplotlib (imported lazily, Agg backend).
"""

from labelbridge.viz.overlay import blend, overlay_labels
from labelbridge.viz.palette import colorize, colorize_raw, raw_palette, train_palette

__all__ = ["blend", "colorize", "colorize_raw", "overlay_labels", "raw_palette", "train_palette"]
