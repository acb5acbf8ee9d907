"""Where the repository, the shared real data and the published weights are.

The real-data benchmarks read ``../shared/data`` and ``../shared/weights`` beside the
repository (``$LABELBRIDGE_SHARED`` overrides the folder); nothing of it is copied into
the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: ``$LABELBRIDGE_SHARED`` overrides where the shared data and weights live.
SHARED = Path(os.environ.get("LABELBRIDGE_SHARED", str(REPO.parent / "shared")))
DATA = SHARED / "data"
WEIGHTS = SHARED / "weights"
CAMVID_ROOT = DATA / "camvid"
IDD_ROOT = DATA / "idd_lite"
#: The published Cityscapes ESPNetv2 s=2.0 checkpoint (U2's teacher; U1's initial weights).
TEACHER_S2 = WEIGHTS / "espnetv2_s_2.0_city_1024x512.pth"
#: The published Cityscapes ESPNetv2 s=1.0 checkpoint.
TEACHER_S1 = WEIGHTS / "espnetv2_s_1.0_city_1024x512.pth"
BENCHMARKS = REPO / "benchmarks"
FIGURES = BENCHMARKS / "figures"
DEFAULT_WORK = BENCHMARKS / "_work"


def missing_paths(*paths: Path) -> list[str]:
    """Those of ``paths`` that do not exist, as strings."""
    return [str(p) for p in paths if not p.exists()]


def require_shared_data(*paths: Path) -> None:
    """Exit with a clear message when any of ``paths`` (default: CamVid, IDD-Lite and the
    s=2.0 teacher) is absent."""
    missing = missing_paths(*(paths or (CAMVID_ROOT, IDD_ROOT, TEACHER_S2)))
    if missing:
        sys.exit(f"real data missing: {', '.join(missing)} (the benchmarks need ../shared)")
