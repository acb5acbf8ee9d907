"""Hub-style model folders (issue 16): ESPNetv2, DiCENet and Hugging Face students saved
through ``huggingface_hub``'s mixin and loaded back (by the mixin, by ``load_checkpoint``,
as a pseudo-labelling teacher) with identical logits; offline, no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from test_models_hf import tiny_segformer_config

from benchmarks.common.reliability import run_cli
from labelbridge.config.pseudo import TeacherConfig
from labelbridge.errors import CheckpointError
from labelbridge.files import sha256_file
from labelbridge.models import SegformerSegmentation, create_model, load_model, save_checkpoint
from labelbridge.models.checkpoint import LoadedModel, load_checkpoint
from labelbridge.models.export import export_model
from labelbridge.models.export_sidecar import SIDECAR_FILE
from labelbridge.models.hub import HUB_CONFIG_KEY, HubSegmentationModel, load_hub_folder
from labelbridge.pseudo.teacher import load_teacher
from labelbridge.taxonomy import load_taxonomy

transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)


def _loaded(spec: str, taxonomy: str = "cityscapes") -> LoadedModel:
    torch.manual_seed(0)
    tax = load_taxonomy(taxonomy)
    model = create_model(spec, tax.num_classes).eval()
    with torch.no_grad():  # non-default BN statistics: buffers must travel too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return LoadedModel(model, tax, spec, {})


def _logits(model: torch.nn.Module, shape=(2, 3, 96, 136)) -> torch.Tensor:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("spec", ["espnetv2:s=0.5", "dicenet:s=0.5", "tiny"])
def test_conv_students_round_trip_through_the_mixin(tmp_path: Path, spec: str) -> None:
    loaded = _loaded(spec)
    hub = HubSegmentationModel.from_loaded(loaded)
    hub.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config[HUB_CONFIG_KEY]["model_spec"] == spec
    assert config[HUB_CONFIG_KEY]["taxonomy"]["name"] == "cityscapes"
    card = (tmp_path / "README.md").read_text()
    assert "library_name: labelbridge" in card
    again = HubSegmentationModel.from_pretrained(tmp_path)
    assert again.spec == spec and again.taxonomy.train_names == loaded.taxonomy.train_names
    expected = _logits(loaded.model)
    assert expected.shape == (2, 19, 96, 136)
    assert torch.equal(_logits(again), expected)
    by_checkpoint = load_checkpoint(tmp_path)
    assert by_checkpoint.spec == spec and by_checkpoint.taxonomy.name == "cityscapes"
    assert torch.equal(_logits(by_checkpoint.model), expected)


def test_hf_student_round_trip_keeps_its_config(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SegformerSegmentation.from_config(tiny_segformer_config(11)).eval()
    loaded = LoadedModel(model, load_taxonomy("camvid11"), "segformer:b0", {})
    HubSegmentationModel.from_loaded(loaded).save_pretrained(tmp_path)
    again = load_model(checkpoint=tmp_path)
    assert type(again.model) is SegformerSegmentation
    assert again.model.hf.config.hidden_sizes == [8, 16, 32, 64]
    assert torch.equal(_logits(again.model), _logits(model))


def test_export_hub_writes_a_checked_folder_with_sidecar(tmp_path: Path) -> None:
    loaded = _loaded("espnetv2:s=0.5")
    result = export_model(loaded, "hub", tmp_path / "hub", source="student.ckpt")
    assert [p.name for p in result.files] == [
        "README.md",
        "config.json",
        "model.safetensors",
        SIDECAR_FILE,
    ]
    side = result.sidecar
    assert side["format"] == "hub" and side["files"]["weights"] == "model.safetensors"
    assert side["input"]["normalization_in_graph"] is True
    assert side["output"]["shape"] == ["batch", 19, "height", "width"]
    checks = side["verification"]["checks"]
    assert [c["shape"] for c in checks] == [[2, 3, 256, 512], [1, 3, 280, 472]]
    assert all(c["max_abs_diff"] == 0.0 for c in checks)
    assert not list((tmp_path / "hub").glob(".export-*"))  # the temporary folder is gone


def test_a_hub_folder_is_a_teacher_with_a_folder_digest(tmp_path: Path) -> None:
    loaded = _loaded("tiny", "camvid11")
    folder = tmp_path / "teacher"
    HubSegmentationModel.from_loaded(loaded).save_pretrained(folder)
    teacher = load_teacher(TeacherConfig(checkpoint=str(folder)), torch.device("cpu"))
    assert teacher.taxonomy.name == "camvid11"
    digest = teacher.description["checkpoint_sha256"]
    assert digest == sha256_file(folder) and len(digest) == 64
    assert torch.equal(_logits(teacher.model), _logits(loaded.model))
    (folder / ".cache").mkdir()  # hidden entries (tool caches) do not change the digest
    (folder / ".cache" / "x").write_text("x")
    assert sha256_file(folder) == digest
    state = safetensors.torch.load_file(str(folder / "model.safetensors"))
    state = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    safetensors.torch.save_file(state, str(folder / "model.safetensors"))
    assert sha256_file(folder) != digest


def test_bad_folders_name_the_file_and_the_problem(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=r"empty: a folder without config\.json"):
        load_checkpoint(empty)
    hf_folder = tmp_path / "hf"
    transformers.SegformerForSemanticSegmentation(
        transformers.SegformerConfig(num_labels=3, hidden_sizes=[8, 16, 32, 64], depths=[1] * 4)
    ).save_pretrained(hf_folder)
    with pytest.raises(CheckpointError, match=r"no 'labelbridge' entry.*model spec 'hf:"):
        load_checkpoint(hf_folder)
    folder = tmp_path / "hub"
    HubSegmentationModel.from_loaded(_loaded("tiny", "camvid11")).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config[HUB_CONFIG_KEY]["model_spec"] = "espnetv2:s=0.5"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_hub_folder(folder)
    with pytest.raises(CheckpointError, match="strictly"):
        HubSegmentationModel.from_pretrained(folder, strict=False)
    (folder / "model.safetensors").unlink()
    config[HUB_CONFIG_KEY]["model_spec"] = "tiny"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: weights file not found"):
        load_checkpoint(folder)


def test_export_cli_hub_then_predict_from_the_folder(tmp_path: Path) -> None:
    tax = load_taxonomy("camvid11")
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "tiny.ckpt", create_model("tiny", tax.num_classes), spec="tiny", taxonomy=tax
    )
    proc = run_cli(["export", str(ckpt), "--format", "hub", "--out", "hub", "--json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["format"] == "hub" and doc["sidecar"]["model_spec"] == "tiny"
    from PIL import Image

    Image.new("RGB", (64, 48), (90, 120, 30)).save(tmp_path / "img.png")
    proc = run_cli(
        ["predict", "img.png", "--checkpoint", "hub", "--out", "pred", "--device", "cpu"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "pred" / "img.png").is_file()
