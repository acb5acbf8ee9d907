"""Tiny fixture datasets in each published layout, shared by the tests and by
``benchmarks/reliability.py``.

* :mod:`~benchmarks.common.layouts.base`: :class:`LayoutFixture` (what reading a
  generated dataset must give) and the label and image writers;
* :mod:`~benchmarks.common.layouts.published`: the layouts of the first readers;
* one module per newer family of layouts (:mod:`~benchmarks.common.layouts.filereaders`,
  :mod:`~benchmarks.common.layouts.generic`, :mod:`~benchmarks.common.layouts.idd_polygons`,
  :mod:`~benchmarks.common.layouts.nuimages`, :mod:`~benchmarks.common.layouts.panoptic`,
  :mod:`~benchmarks.common.layouts.waymo`), each with its ``LAYOUTS_EXTRA`` and, for a
  preparer, ``PUBLISHED_EXTRA``;
* :mod:`~benchmarks.common.layouts.mseg`: files in MSeg's published TSV formats;
* :mod:`~benchmarks.common.layouts.toydata`: a tiny learnable dataset and a training
  config for it.

:data:`LAYOUTS` maps a layout name to its ``make_<layout>(root)`` writer: the published
layouts, then each module's ``LAYOUTS_EXTRA``; :data:`PREPARER_SOURCES` maps a preparer
to the writer of the release it prepares. A new layout module is added to both here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import filereaders, generic, idd_polygons, nuimages, panoptic, waymo
from .base import (
    H,
    LayoutFixture,
    W,
    fixture_taxonomy,
    paint_ids,
    paint_label,
    write_color_label,
    write_id_label,
    write_image,
)
from .published import (
    PUBLISHED_LAYOUTS,
    make_bdd100k,
    make_camvid,
    make_cityscapes,
    make_folder,
    make_goose,
    make_idd,
    make_idd_lite,
    make_kitti,
    make_mapillary,
    make_rellis3d,
    make_rugd,
    make_wilddash2,
    make_ycor,
)

#: Layout name -> writer of a tiny dataset in that layout.
LAYOUTS: dict[str, Callable[[Path], LayoutFixture]] = {
    **PUBLISHED_LAYOUTS,
    **filereaders.LAYOUTS_EXTRA,
    **generic.LAYOUTS_EXTRA,
    **idd_polygons.LAYOUTS_EXTRA,
    **nuimages.LAYOUTS_EXTRA,
    **panoptic.LAYOUTS_EXTRA,
    **waymo.LAYOUTS_EXTRA,
}

#: Preparer name -> writer of a tiny copy of the published release it prepares.
PREPARER_SOURCES: dict[str, Callable[[Path], object]] = {
    **idd_polygons.PUBLISHED_EXTRA,
    **nuimages.PUBLISHED_EXTRA,
    **panoptic.PUBLISHED_EXTRA,
    **waymo.PUBLISHED_EXTRA,
}

__all__ = [
    "H",
    "LAYOUTS",
    "PREPARER_SOURCES",
    "PUBLISHED_LAYOUTS",
    "W",
    "LayoutFixture",
    "fixture_taxonomy",
    "make_bdd100k",
    "make_camvid",
    "make_cityscapes",
    "make_folder",
    "make_goose",
    "make_idd",
    "make_idd_lite",
    "make_kitti",
    "make_mapillary",
    "make_rellis3d",
    "make_rugd",
    "make_wilddash2",
    "make_ycor",
    "paint_ids",
    "paint_label",
    "write_color_label",
    "write_id_label",
    "write_image",
]
