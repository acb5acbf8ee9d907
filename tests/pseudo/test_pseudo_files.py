"""Atomic writes, deterministic encodings, the manifest (torn lines, merging), reports,
the pseudo-label config and the CLI."""

from __future__ import annotations

import errno
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from labelbridge.config.pseudo import PseudoLabelConfig, load_pseudo_config
from labelbridge.constants import DEFAULT_TTA_SCALES
from labelbridge.errors import ConfigError
from labelbridge.files import (
    TEMP_SUFFIX,
    OutputWriteError,
    atomic_output,
    copy_file_atomic,
    encode_label_png,
    encode_npz,
    remove_stale_temp_files,
    sha256_bytes,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from labelbridge.pseudo import manifest as manifest_mod
from labelbridge.pseudo.manifest import (
    ManifestError,
    ManifestWriter,
    manifest_name,
    merge_manifests,
    read_manifest,
    read_manifests,
    verify_outputs,
)
from labelbridge.pseudo.report import build_report, report_markdown
from labelbridge.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- writer
def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.png"
    digest = write_bytes_atomic(target, b"one")
    assert target.read_bytes() == b"one" and digest == sha256_bytes(b"one")
    write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["b.png"]


def test_enospc_keeps_old_file_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.png"
    write_bytes_atomic(target, b"old")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("labelbridge.files.os.fsync", full)
    with pytest.raises(OutputWriteError, match="no space left on device"):
        write_bytes_atomic(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_a_block_that_fails_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    """Checkpoints are written by torch.save into atomic_output: a failure half-way
    (here after some bytes) leaves the earlier checkpoint as it was."""
    target = tmp_path / "last.ckpt"
    torch.save({"step": 1}, target)
    with pytest.raises(RuntimeError, match="killed half-way"):
        with atomic_output(target) as fh:
            fh.write(b"partial bytes")
            raise RuntimeError("killed half-way")
    assert torch.load(target) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    with atomic_output(target) as fh:
        torch.save({"step": 2}, fh)
    assert torch.load(target) == {"step": 2}


def test_text_json_and_copy_helpers_write_whole_files(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "cfg" / "config.yaml", "epochs: 3\n")
    assert (tmp_path / "cfg" / "config.yaml").read_text() == "epochs: 3\n"
    write_json_atomic(tmp_path / "stage_done.json", {"path": Path("a/b"), "score": 0.5})
    text = (tmp_path / "stage_done.json").read_text()
    assert json.loads(text) == {"path": "a/b", "score": 0.5} and text.endswith("}\n")
    copy_file_atomic(tmp_path / "stage_done.json", tmp_path / "copy" / "final.json")
    assert (tmp_path / "copy" / "final.json").read_text() == text
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(TEMP_SUFFIX)]
    assert leftovers == []


def test_encodings_are_deterministic_and_readable() -> None:
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    png = encode_label_png(labels)
    assert png == encode_label_png(labels.copy())
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), labels)
    arrays = {"ids": np.ones((2, 3, 4), np.uint8), "probs": np.full((2, 3, 4), 0.5, np.float16)}
    blob = encode_npz(arrays)
    assert blob == encode_npz({k: v.copy() for k, v in arrays.items()})
    loaded = np.load(io.BytesIO(blob))
    np.testing.assert_array_equal(loaded["probs"], arrays["probs"])
    assert {i.date_time for i in zipfile.ZipFile(io.BytesIO(blob)).infolist()} == {
        (1980, 1, 1, 0, 0, 0)
    }
    with pytest.raises(ValueError, match="uint8"):
        encode_label_png(labels.astype(np.int32))


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    from labelbridge.files import _HOST

    dead = tmp_path / f".a.png.{_HOST}.999999999.0{TEMP_SUFFIX}"
    mine = tmp_path / f".b.png.{_HOST}.{os.getpid()}.0{TEMP_SUFFIX}"
    other_host = tmp_path / f".c.png.elsewhere.1.0{TEMP_SUFFIX}"
    for p in (dead, mine, other_host):
        p.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == 1
    assert not dead.exists() and mine.exists() and other_host.exists()


# ---------------------------------------------------------------------------- manifest
def test_torn_last_line_dropped_and_cut_before_append(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"key": "a", "sha256": {"a.png": "1"}}\n{"key": "b", "sha2')
    assert [r["key"] for r in read_manifest(path)] == ["a"]
    with ManifestWriter(path) as w:
        w.append({"key": "c", "sha256": {"c.png": "3"}})
    assert path.read_text().splitlines()[1] == '{"key":"c","sha256":{"c.png":"3"}}'
    assert [r["key"] for r in read_manifest(path)] == ["a", "c"]


def test_corrupt_middle_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"key": "a"}\nnot json\n{"key": "c"}\n')
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2"):
        read_manifest(path)


def test_manifest_append_failure_leaves_file_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "manifest.jsonl"
    w = ManifestWriter(path)
    w.append({"key": "a", "sha256": {"a.png": "1"}})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manifest_mod.os, "fsync", full)
    with pytest.raises(OutputWriteError):
        w.append({"key": "b", "sha256": {"b.png": "2"}})
    monkeypatch.undo()
    w.close()
    assert [r["key"] for r in read_manifest(path)] == ["a"]
    assert path.read_bytes().endswith(b"\n")


def test_verify_outputs_checks_existence_and_checksum(tmp_path: Path) -> None:
    digest = write_bytes_atomic(tmp_path / "k.png", b"data")
    rec = {"key": "k", "sha256": {"k.png": digest}}
    assert verify_outputs(rec, tmp_path)
    (tmp_path / "k.png").write_bytes(b"datA")
    assert not verify_outputs(rec, tmp_path)
    assert not verify_outputs({"key": "k", "error": "bad file"}, tmp_path)


def test_merge_shard_parts_in_dataset_order(tmp_path: Path) -> None:
    assert manifest_name() == "manifest.jsonl" and manifest_name(1, 2) == "manifest.1-of-2.jsonl"
    with ManifestWriter(tmp_path / manifest_name(1, 2)) as w:
        w.append({"key": "b", "sha256": {"b.png": "2"}})
    assert merge_manifests(tmp_path, ["a", "b"]) is None  # shard 0 not done
    with ManifestWriter(tmp_path / manifest_name(0, 2)) as w:
        w.append({"key": "a", "sha256": {"a.png": "1"}})
    assert sorted(read_manifests(tmp_path)) == ["a", "b"]
    merged = merge_manifests(tmp_path, ["a", "b"])
    assert merged == tmp_path / "manifest.jsonl"
    assert [r["key"] for r in read_manifest(merged)] == ["a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.jsonl"]


# ---------------------------------------------------------------------------- report
def test_report_aggregates_hand_computed() -> None:
    tax = load_taxonomy("cityscapes")
    records = [
        {
            "key": "a",
            "sha256": {"a.png": "1"},
            "pixels": {"road": 6, "ignore": 2},
            "changed": {"road": 3},
            "confidence_sum": {"road": 4.8},
            "agreement": {"labelled": 8, "pseudo": 6, "teacher": 3},
        },
        {
            "key": "b",
            "sha256": {"b.png": "2"},
            "pixels": {"road": 2, "sky": 8},
            "changed": {"sky": 1},
            "confidence_sum": {"road": 1.0, "sky": 4.0},
            "agreement": {"labelled": 10, "pseudo": 10, "teacher": 9},
            "fallbacks": [{"scale": 2.0, "level": "cpu", "error": "oom"}],
        },
        {"key": "c", "input": "c.jpg", "error": "corrupt"},
    ]
    rep = build_report(records, dataset="d", taxonomy=tax, total_images=4)
    rows = {r["name"]: r for r in rep["classes"]}
    assert rows["road"]["pixels"] == 8 and rows["road"]["mean_confidence"] == pytest.approx(5.8 / 8)
    assert rows["road"]["changed_share"] == pytest.approx(3 / 8)
    assert rows["ignore"]["pixels"] == 2 and rows["ignore"]["mean_confidence"] is None
    assert rep["pixels"] == {
        "total": 18,
        "labelled": 16,
        "ignore": 2,
        "ignore_share": pytest.approx(2 / 18),
    }
    assert rep["changed_by_priors"]["share_of_labelled"] == pytest.approx(4 / 16)
    assert rep["mean_confidence"] == pytest.approx(9.8 / 16)
    assert rep["images"] == {"total": 4, "finished": 2, "remaining": 1, "skipped_bad_files": 1}
    assert rep["agreement_with_extra_gt"] == {
        "labelled_pixels": 18,
        "pseudo_labels": pytest.approx(16 / 18),
        "teacher": pytest.approx(12 / 18),
    }
    assert rep["fallbacks"] == [{"scale": 2.0, "level": "cpu", "images": 1}]
    md = report_markdown(rep)
    assert "| road | 8 | 44.44% | 37.50% | 0.725 |" in md
    assert "`c.jpg`: corrupt" in md and "| 2.0 | cpu | 1 |" in md


# ---------------------------------------------------------------------------- config
def _raw(**over: object) -> dict:
    raw = {
        "teacher": {"checkpoint": "t.ckpt"},
        "datasets": [{"name": "a", "reader": "camvid", "ontology": "camvid11_to_cityscapes"}],
        "output": "out",
    }
    raw.update(over)
    return raw


def test_config_defaults_and_validation() -> None:
    cfg = PseudoLabelConfig.model_validate(_raw())
    assert cfg.tta.scales == list(DEFAULT_TTA_SCALES) and cfg.tta.flip and cfg.priors
    assert cfg.outputs.previews == 4 and not cfg.outputs.soft_labels.enabled
    bad = [
        _raw(teacher={"checkpoint": "x", "model": "tiny"}),
        _raw(teacher={"weights": "x"}),
        _raw(datasets=[{"name": "a/b", "reader": "camvid", "ontology": "m"}]),
        _raw(datasets=[{"name": "a", "reader": "camvid", "ontology": "m"}] * 2),
        _raw(tta={"scales": [1.0, 1.0]}),
        _raw(tta={"scales": [0.0]}),
        _raw(device="tpu"),
        _raw(extra_key=1),
    ]
    for raw in bad:
        with pytest.raises(Exception):  # noqa: B017 - pydantic ValidationError
            PseudoLabelConfig.model_validate(raw)


def test_example_config_loads_with_overrides() -> None:
    cfg = load_pseudo_config(
        REPO / "configs" / "pseudo_camvid_idd_to_cityscapes.yaml",
        ["priors=false", "tta.scales=[1.0]"],
    )
    assert [d.name for d in cfg.datasets] == ["camvid_train", "camvid_val", "idd_lite_train"]
    assert cfg.priors is False and cfg.tta.scales == [1.0]
    with pytest.raises(ConfigError, match="unknown key"):
        load_pseudo_config(
            REPO / "configs" / "pseudo_camvid_idd_to_cityscapes.yaml", ["tta.scalez=[1.0]"]
        )


# ---------------------------------------------------------------------------- CLI
def test_cli_runs_from_a_checkpoint_and_resumes(tmp_path: Path) -> None:
    from test_pseudo_run import NAMES, make_camvid

    from labelbridge.cli import app
    from labelbridge.models import TinySegNet, save_checkpoint

    data = make_camvid(tmp_path / "camvid", names=NAMES[:2])
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "t.ckpt", TinySegNet(19), spec="tiny", taxonomy=load_taxonomy("cityscapes")
    )
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        json.dumps(
            _raw(
                teacher={"checkpoint": str(ckpt)},
                datasets=[
                    {
                        "name": "cv",
                        "reader": "camvid",
                        "root": str(data),
                        "ontology": "camvid11_to_cityscapes",
                    }
                ],
                output=str(tmp_path / "out"),
                device="cpu",
                threads=1,
                outputs={"previews": 0},
            )
        )
    )
    runner = CliRunner()
    args = ["pseudo-label", str(cfg), "--set", "tta.scales=[1.0]", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    (row,) = json.loads(first.stdout)["datasets"]
    assert row["processed"] == 2 and row["complete"] is True
    info = yaml.safe_load((tmp_path / "out" / "cv" / "pseudo_labels.yaml").read_text())
    assert info["taxonomy"] == "cityscapes" and info["teacher"]["model"] == "tiny"
    second = runner.invoke(app, [*args[:-1], "--no-progress"])
    assert second.exit_code == 0, second.output
    assert "cv" in second.stdout and "yes" in second.stdout
    assert json.loads(runner.invoke(app, args).stdout)["datasets"][0]["resumed"] == 2


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
