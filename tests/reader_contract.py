"""The checks every dataset reader must pass (``ReaderContract``), on tiny fixtures
written in each published layout (:mod:`benchmarks.common.layouts`); one small subclass
per layout names the generator and its split names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.common.layouts import H, LayoutFixture, W
from labelbridge.data import DATASETS, create_dataset
from labelbridge.data.base import SegmentationDataset
from labelbridge.data.registry import list_datasets
from labelbridge.errors import DatasetError


class ReaderContract:
    """Checks shared by all readers. Subclasses set ``layout`` (a key of LAYOUTS)."""

    layout: str = ""

    @pytest.fixture
    def fx(self, tmp_path: Path) -> LayoutFixture:
        from benchmarks.common.layouts import LAYOUTS

        return LAYOUTS[self.layout](tmp_path / self.layout)

    def open(self, fx: LayoutFixture, split: str, **kwargs) -> SegmentationDataset:
        return create_dataset(fx.dataset, fx.root, split, taxonomy=fx.taxonomy, **kwargs)

    def test_registered(self, fx: LayoutFixture) -> None:
        assert fx.dataset in DATASETS
        assert fx.dataset in [info.name for info in list_datasets()]

    def test_split_counts_and_keys(self, fx: LayoutFixture) -> None:
        for split, keys in fx.keys.items():
            ds = self.open(fx, split)
            assert len(ds) == len(keys), split
            assert [p.key for p in ds.pairs] == keys
            assert ds.skipped == []

    def test_samples(self, fx: LayoutFixture) -> None:
        for split, keys in fx.keys.items():
            ds = self.open(fx, split)
            samples = list(ds.iter_samples())
            assert [s.key for s in samples] == keys
            for s in samples:
                assert s.dataset == fx.dataset and s.split == split
                assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
                assert s.image_path == fx.files[s.key][0]
                if s.key in fx.images:  # lossless image: exact pixels
                    np.testing.assert_array_equal(s.image, fx.images[s.key])
                expected = fx.labels[s.key]
                if expected is None:
                    assert s.label is None and s.label_path is None
                else:
                    assert s.label.dtype == np.int32 and s.label.shape == (H, W)
                    np.testing.assert_array_equal(s.label, expected)
                    assert s.label_path == fx.files[s.key][1]

    def test_unknown_split(self, fx: LayoutFixture) -> None:
        cls = DATASETS[fx.dataset]
        if not cls.splits:
            pytest.skip("reader accepts any split name")
        with pytest.raises(DatasetError, match="no split 'nope'"):
            self.open(fx, "nope")

    def test_missing_label_named_then_skipped(self, fx: LayoutFixture) -> None:
        split = next(s for s, keys in fx.keys.items() if fx.labels[keys[0]] is not None)
        key = fx.keys[split][0]
        image, label = fx.files[key]
        label.unlink()
        with pytest.raises(DatasetError, match="no label file") as info:
            self.open(fx, split)
        assert str(image) in str(info.value)
        if len(fx.keys[split]) == 1:
            with pytest.raises(DatasetError, match="no usable images"):
                self.open(fx, split, on_error="skip")
            return
        ds = self.open(fx, split, on_error="skip")
        assert [p.key for p in ds.pairs] == fx.keys[split][1:]
        assert [(r.path, r.kind) for r in ds.skipped] == [(str(image), "missing_label")]
