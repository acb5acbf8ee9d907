"""Where the tests find the repository and the shared real data and weights (``../shared``
beside the clone, or ``$LABELBRIDGE_SHARED``); a module of its own so that tests import it
by one name (each test folder may have its own ``conftest``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LABELBRIDGE_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
SHARED_WEIGHTS = SHARED / "weights"
