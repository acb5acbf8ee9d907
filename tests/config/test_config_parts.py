"""The shared config parts: one key for the reader of every dataset entry."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from labelbridge.config.compat import with_reader_key
from labelbridge.config.distill import TargetDatasetConfig
from labelbridge.config.parts import ValDatasetConfig
from labelbridge.config.pipeline import ExtraDatasetConfig
from labelbridge.config.pseudo import DatasetEntry
from labelbridge.config.train import TrainDatasetConfig


@pytest.mark.parametrize("cls", [TrainDatasetConfig, ValDatasetConfig, TargetDatasetConfig])
def test_entries_read_as_they_are_take_reader_or_its_older_spelling(cls: type) -> None:
    assert cls.model_validate({"reader": "camvid"}).reader == "camvid"
    older = cls.model_validate({"name": "camvid", "split": "val"})
    assert older.reader == "camvid" and older.split == "val"
    assert "name" not in older.model_dump()
    assert cls.model_validate({"name": "camvid", "reader": "camvid"}).reader == "camvid"
    with pytest.raises(ValidationError, match="give 'reader' alone") as err:
        cls.model_validate({"name": "camvid_train", "reader": "camvid"})
    assert "'camvid_train'" in str(err.value)


def test_report_name_defaults_to_the_reader() -> None:
    assert ValDatasetConfig(reader="idd_lite").report_name == "idd_lite"
    assert ValDatasetConfig(reader="idd_lite", label="idd_val").report_name == "idd_val"


@pytest.mark.parametrize("cls", [DatasetEntry, ExtraDatasetConfig])
def test_entries_written_to_a_folder_keep_name_as_the_folder(cls: type) -> None:
    entry = cls.model_validate({"name": "camvid_train", "reader": "camvid", "ontology": "x"})
    assert (entry.name, entry.reader) == ("camvid_train", "camvid")
    with pytest.raises(ValidationError, match="reader"):
        cls.model_validate({"name": "camvid_train", "ontology": "x"})


def test_with_reader_key_converts_read_as_they_are_entries_both_ways() -> None:
    today = {
        "taxonomy": "camvid11",
        "optimizer": {"name": "adamw", "lr": 0.1},
        "datasets": [{"reader": "camvid", "split": "train"}],
        "extras": [{"name": "x", "reader": "idd_lite", "split": "train"}],
    }
    older = with_reader_key(today, older=True)
    assert older["datasets"] == [{"name": "camvid", "split": "train"}]
    assert older["extras"] == today["extras"]  # an entry with an output folder keeps both
    assert older["optimizer"] == {"name": "adamw", "lr": 0.1}  # not a dataset entry
    assert with_reader_key(older) == today


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"soft": True}, "give 'pseudo' (a pseudo-label folder), 'partial' (a mapping), or both"),
        ({"pseudo": "x", "sofft": True}, "sofft: Extra inputs are not permitted"),
        ("pseudo", "labels must be 'gt' or a mapping such as {pseudo: DIR}"),
    ],
)
def test_a_wrong_label_source_gets_one_message(labels: object, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        TrainDatasetConfig.model_validate({"reader": "camvid", "labels": labels})
    assert err.value.error_count() == 1
    assert message in str(err.value)


def test_label_sources_of_every_kind() -> None:
    def entry(labels: object) -> TrainDatasetConfig:
        return TrainDatasetConfig.model_validate({"reader": "camvid", "labels": labels})

    assert entry("gt").pseudo_dir is None and not entry("gt").soft
    soft = entry({"pseudo": "runs/p", "soft": True})
    assert (str(soft.pseudo_dir), soft.soft, soft.partial) == ("runs/p", True, None)
    part = entry({"partial": "camvid11_to_cityscapes"})
    assert (part.pseudo_dir, part.soft, part.partial) == (None, False, "camvid11_to_cityscapes")
    both = entry({"pseudo": "runs/p", "partial": "camvid11_to_cityscapes"})
    assert (str(both.pseudo_dir), both.partial) == ("runs/p", "camvid11_to_cityscapes")
