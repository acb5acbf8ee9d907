"""What a user installing the wheel gets: every built-in taxonomy, mapping and example
config inside it, the examples written by ``labelbridge init`` and valid for the command
that runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from labelbridge.config.distill import load_distill_config
from labelbridge.config.examples import example_configs, write_example
from labelbridge.config.pipeline import load_pipeline_config
from labelbridge.config.pseudo import load_pseudo_config
from labelbridge.config.train import load_train_config
from labelbridge.errors import UserError

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "labelbridge"

LOADERS = {
    "train": load_train_config,
    "pseudo-label": load_pseudo_config,
    "distill": load_distill_config,
    "pipeline": load_pipeline_config,
}


def test_wheel_holds_every_data_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("labelbridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = sorted(
        p.relative_to(PACKAGE.parent).as_posix()
        for p in PACKAGE.rglob("*")
        if p.suffix in {".yaml", ".typed"}
    )
    assert len([d for d in data if "/configs/" in d]) == len(example_configs()) >= 7
    assert len([d for d in data if "/mappings/" in d]) >= 40
    assert [d for d in data if d not in names] == []


def test_the_repository_configs_folder_is_the_shipped_one() -> None:
    assert (REPO / "configs").resolve() == (PACKAGE / "configs").resolve()


def test_every_example_is_valid_for_its_command(tmp_path: Path) -> None:
    examples = example_configs()
    assert examples["camvid_teacher"].command == "train"
    assert examples["pseudo_idd_to_camvid"].command == "pseudo-label"
    assert examples["demo"].command == "pipeline"
    for kind, example in examples.items():
        path = write_example(kind, tmp_path)
        assert path.read_text(encoding="utf-8") == (PACKAGE / "configs" / f"{kind}.yaml").read_text(
            encoding="utf-8"
        )
        LOADERS[example.command](path)  # raises on an invalid config


def test_init_refuses_to_overwrite_and_unknown_kinds(tmp_path: Path) -> None:
    write_example("ycor_teacher", tmp_path)
    with pytest.raises(UserError, match="already exists; pass --force"):
        write_example("ycor_teacher", tmp_path)
    write_example("ycor_teacher", tmp_path, overwrite=True)
    with pytest.raises(UserError, match="unknown config kind 'nope'; one of: camvid_teacher"):
        write_example("nope", tmp_path)


def test_init_cli_writes_and_lists(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "labelbridge", "init"]
    listed = json.loads(subprocess.run([*cli, "--list", "--json"], capture_output=True,
                                       text=True, check=True).stdout)  # fmt: skip
    assert [e["kind"] for e in listed] == list(example_configs())
    out = subprocess.run([*cli, "student_camvid_idd", str(tmp_path), "--json"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    doc = json.loads(out)
    assert doc["command"] == f"labelbridge train {tmp_path / 'student_camvid_idd.yaml'}"
    again = subprocess.run([*cli, "student_camvid_idd", str(tmp_path)], capture_output=True,
                           text=True)  # fmt: skip
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr
