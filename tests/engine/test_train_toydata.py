"""The tiny learnable dataset of :mod:`benchmarks.common.layouts.toydata` reads back as
written."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common.layouts.toydata import make_toy_dataset
from labelbridge.data import create_dataset


def test_toy_dataset_reads_back(tmp_path: Path) -> None:
    root = make_toy_dataset(tmp_path / "toy", splits={"train": 3})
    reader = create_dataset("folder", root, "train")
    assert len(reader) == 3
    sample = reader[0]
    assert sample.image.shape == (48, 64, 3)
    assert set(np.unique(sample.label).tolist()) <= {0, 1, 2, 9}
    assert reader.taxonomy.train_names == ["sky", "road", "car"]
