"""``labelbridge export`` through the real console script: help, option errors (exit 2,
one paragraph naming the option), ``--json`` printing exactly one JSON document."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from benchmarks.common.reliability import run_cli
from labelbridge.models import create_model, save_checkpoint
from labelbridge.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    tax = load_taxonomy("camvid11")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    return save_checkpoint(path, create_model("tiny", tax.num_classes), spec="tiny", taxonomy=tax)


def test_export_help(tmp_path: Path) -> None:
    proc = run_cli(["export", "--help"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for needle in ("--format", "--head", "--size", "--json", "labelbridge export ", "onnx"):
        assert needle in proc.stdout, needle


def test_wrong_format_names_the_option(tmp_path: Path, tiny_checkpoint: Path) -> None:
    proc = run_cli(
        ["export", str(tiny_checkpoint), "--format", "tflite", "--out", "out"], cwd=tmp_path
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "error: --format must be one of onnx, torchscript, hf, hub, got 'tflite'\n"
    )
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint_and_hf_for_a_conv_net(tmp_path: Path, tiny_checkpoint: Path) -> None:
    proc = run_cli(["export", "nope.ckpt", "--format", "onnx", "--out", "out"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: nope.ckpt: export checkpoint not found")
    proc = run_cli(["export", str(tiny_checkpoint), "--format", "hf", "--out", "hf"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'tiny' is not a transformers model" in proc.stderr
    assert "--format hub" in proc.stderr


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="ONNX export needs onnx, onnxscript and onnxruntime (pip install 'labelbridge[export]')",
)
def test_json_is_one_document_of_the_written_files(tmp_path: Path, tiny_checkpoint: Path) -> None:
    proc = run_cli(
        [
            "export",
            str(tiny_checkpoint),
            "--format",
            "onnx",
            "--head",
            "argmax",
            "--out",
            "x",
            "--json",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # nothing else on stdout
    assert doc["format"] == "onnx"
    assert [Path(p).name for p in doc["files"]] == ["model.onnx", "labelbridge_export.json"]
    assert all((tmp_path / p).is_file() for p in doc["files"])
    side = json.loads((tmp_path / "x" / "labelbridge_export.json").read_text())
    assert doc["sidecar"] == side
    assert side["output"]["kind"] == "argmax" and side["taxonomy"]["name"] == "camvid11"
    assert side["source_checkpoint"] == str(tiny_checkpoint.resolve())
