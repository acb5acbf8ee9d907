"""TrainConfig: unknown keys and wrong types are refused with file:line; derived fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelbridge.config.train import PseudoLabels, load_train_config
from labelbridge.errors import ConfigError

BASE = """\
taxonomy: camvid11
datasets:
  - {name: camvid, root: data/camvid, split: train}
  - name: idd_lite
    root: data/idd_lite
    labels: {pseudo: runs/pseudo/idd_lite}
    weight: 0.5
val:
  - {name: camvid, root: data/camvid, split: val}
  - {name: idd_lite, root: data/idd_lite, split: val, ontology: idd_level1_to_camvid11, label: idd}
model: {spec: tiny}
precision: 32
output: runs/x
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_and_derived_fields(tmp_path: Path) -> None:
    cfg = load_train_config(write(tmp_path, BASE))
    assert cfg.precision == "32"
    assert cfg.datasets[0].labels == "gt" and cfg.datasets[0].weight == 1.0
    assert isinstance(cfg.datasets[1].labels, PseudoLabels)
    assert cfg.datasets[1].pseudo_dir == Path("runs/pseudo/idd_lite")
    assert [d.reader for d in cfg.source_datasets] == ["camvid"]
    assert cfg.select_index == 0
    assert [v.report_name for v in cfg.val] == ["camvid", "idd"]
    assert cfg.early_stopping.patience == 15 and cfg.finetune.lr_factor == 0.1
    assert cfg.augment.scale_range == (0.5, 2.0)


def test_unknown_key_names_file_and_line(tmp_path: Path) -> None:
    text = BASE.replace("model: {spec: tiny}", "model: {spec: tiny}\nlearning_rate: 0.1")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"{path}:12: learning_rate: unknown key"):
        load_train_config(path)


def test_nested_unknown_key(tmp_path: Path) -> None:
    text = BASE.replace("precision: 32", "precision: 32\naugment:\n  crop: [64, 64]\n  flip: true")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"{path}:15: augment.flip: unknown key"):
        load_train_config(path)


def test_wrong_type_names_file_and_line(tmp_path: Path) -> None:
    text = BASE.replace("weight: 0.5", "weight: heavy")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"{path}:7: datasets.1.weight"):
        load_train_config(path)


def test_bad_precision_and_labels(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("precision: 32", "precision: 8"))
    with pytest.raises(ConfigError, match=rf"{path}:12: precision"):
        load_train_config(path)
    path = write(
        tmp_path, BASE.replace("labels: {pseudo: runs/pseudo/idd_lite}", "labels: teacher")
    )
    with pytest.raises(ConfigError, match=rf"{path}:6: datasets.1.labels"):
        load_train_config(path)


def test_two_selection_sets_refused(tmp_path: Path) -> None:
    text = BASE.replace("split: val}", "split: val, select: true}").replace(
        "label: idd}", "label: idd, select: true}"
    )
    with pytest.raises(ConfigError, match="at most one val entry may set 'select: true'"):
        load_train_config(write(tmp_path, text))


def test_select_flag_and_source_flag(tmp_path: Path) -> None:
    text = BASE.replace("label: idd}", "label: idd, select: true}")
    text = text.replace("weight: 0.5", "weight: 0.5\n    source: true")
    cfg = load_train_config(write(tmp_path, text))
    assert cfg.select_index == 1
    assert [d.reader for d in cfg.source_datasets] == ["idd_lite"]


def test_finetune_needs_source_data(tmp_path: Path) -> None:
    text = BASE.replace("  - {name: camvid, root: data/camvid, split: train}\n", "")
    with pytest.raises(ConfigError, match="finetune.enabled needs source datasets"):
        load_train_config(write(tmp_path, text))
    cfg = load_train_config(write(tmp_path, text), ["finetune.enabled=false"])
    assert cfg.source_datasets == []


def test_overrides(tmp_path: Path) -> None:
    cfg = load_train_config(
        write(tmp_path, BASE), ["epochs=3", "datasets.1.weight=2", "augment.crop=[32, 48]"]
    )
    assert cfg.epochs == 3 and cfg.datasets[1].weight == 2.0 and cfg.augment.crop == (32, 48)
    with pytest.raises(ConfigError, match="scale_range must be"):
        load_train_config(write(tmp_path, BASE), ["augment.scale_range=[2.0, 1.0]"])


def test_example_configs_are_valid() -> None:
    configs = Path(__file__).resolve().parents[2] / "configs"
    names = ["camvid_teacher.yaml", "ycor_teacher.yaml", "student_camvid_idd.yaml"]
    for name in names:
        cfg = load_train_config(configs / name)
        assert cfg.datasets and cfg.val


def test_cli_reports_config_errors_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from labelbridge.cli import main

    path = write(tmp_path, BASE.replace("model: {spec: tiny}", "model: {spec: tiny, widht: 3}"))
    with pytest.raises(SystemExit) as exc:
        main(["train", str(path), "--set", "epochs=2"])
    assert exc.value.code == 2
    assert f"{path}:11: model.widht: unknown key" in capsys.readouterr().err
