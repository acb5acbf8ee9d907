"""Model zoo: spec parsing, registry errors, strict weight loading, inference helpers, CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from labelbridge.cli import app
from labelbridge.errors import CheckpointError, UserError
from labelbridge.models import (
    MODELS,
    ESPNetv2,
    ModelSpec,
    TinySegNet,
    count_parameters,
    create_model,
    image_to_tensor,
    parse_spec,
    predict_logits,
    save_checkpoint,
)
from labelbridge.taxonomy import Taxonomy

torch.set_num_threads(1)


def _taxonomy(k: int) -> Taxonomy:
    return Taxonomy.from_dict(
        {
            "name": f"t{k}",
            "classes": [{"id": i, "name": f"c{i}", "color": [i, i, i]} for i in range(k)],
        }
    )


def test_parse_spec_forms() -> None:
    assert parse_spec("espnetv2:s=2.0") == ModelSpec("espnetv2", {"s": "2.0"})
    assert parse_spec("segformer:b3") == ModelSpec("segformer", {"variant": "b3"})
    assert parse_spec("tiny") == ModelSpec("tiny", {})
    assert parse_spec("hf:/tmp/a:b,c") == ModelSpec("hf", {"source": "/tmp/a:b,c"})
    assert str(parse_spec("espnetv2:s=1.0, background=true")) == "espnetv2:s=1.0,background=true"
    assert str(parse_spec("mask2former:swin-t")) == "mask2former:swin-t"


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(UserError) as err:
        create_model("resnet:50", 3)
    for name in MODELS:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("espnetv2:s=3.0", "s must be one of"),
        ("espnetv2:depth=3", "unknown option"),
        ("espnetv2:s=1.0,background=maybe", "true or false"),
        ("segformer:b9", "unknown variant 'b9'"),
        ("mask2former:swin-x", "unknown variant"),
        ("tiny:width=abc", "width must be an integer"),
        ("hf:", "hf:<hub id or local folder>"),
    ],
)
def test_bad_options_are_user_errors(spec: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        create_model(spec, 3)


def test_tiny_width_and_forward_shape() -> None:
    model = create_model("tiny:width=8", 5)
    assert isinstance(model, TinySegNet)
    assert model.head.in_channels == 8
    out = model(torch.rand(2, 3, 30, 22))
    assert out.shape == (2, 5, 30, 22)


def test_espnetv2_spec_builds_background_head() -> None:
    model = create_model("espnetv2:s=0.5,background=true", 19)
    assert isinstance(model, ESPNetv2)
    assert model.bu_dec_l4.merge_layer[3].out_channels == 20
    assert model.num_classes == 19


def test_count_parameters_matches_real_model() -> None:
    real = sum(p.numel() for p in create_model("espnetv2:s=1.0", 19).parameters())
    assert count_parameters("espnetv2:s=1.0", 19) == real == 233_999


def test_weights_load_strictly_from_state_dict_and_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = create_model("tiny:width=8", 4)
    torch.save(src.state_dict(), tmp_path / "plain.pth")
    save_checkpoint(tmp_path / "ck.pt", src, spec="tiny:width=8", taxonomy=_taxonomy(4))
    x = torch.rand(1, 3, 16, 16)
    src.eval()
    for name in ("plain.pth", "ck.pt"):
        dst = create_model("tiny:width=8", 4, weights=tmp_path / name).eval()
        assert torch.equal(dst(x), src(x))


def test_weights_mismatch_lists_keys(tmp_path: Path) -> None:
    torch.save(create_model("tiny:width=8", 4).state_dict(), tmp_path / "w8.pth")
    with pytest.raises(CheckpointError) as err:
        create_model("tiny:width=16", 4, weights=tmp_path / "w8.pth")
    msg = str(err.value)
    assert str(tmp_path / "w8.pth") in msg
    assert (
        "shape mismatches" in msg
        and "stem.0.weight file (8, 3, 3, 3) vs model (16, 3, 3, 3)" in msg
    )
    sd = create_model("tiny:width=8", 4).state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["head.bias"]
    torch.save(sd, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError) as err:
        create_model("tiny:width=8", 4, weights=tmp_path / "odd.pth")
    assert "missing keys (1): head.bias" in str(err.value)
    assert "unexpected keys (1): extra.weight" in str(err.value)


def test_classifier_reinit_only_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    src = create_model("tiny:width=8", 4)
    torch.save(src.state_dict(), tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="reinit_classifier=True"):
        create_model("tiny:width=8", 6, weights=tmp_path / "w.pth")
    with caplog.at_level(logging.INFO, logger="labelbridge.models.state_dict"):
        dst = create_model("tiny:width=8", 6, weights=tmp_path / "w.pth", reinit_classifier=True)
    assert torch.equal(dst.stem[0].weight, src.stem[0].weight)
    assert dst.head.weight.shape == (6, 8, 1, 1)
    assert "re-initialised 4 classifier tensors" in caplog.text and "head.weight" in caplog.text


def test_image_to_tensor_and_predict_logits_resize() -> None:
    image = np.zeros((6, 4, 3), dtype=np.uint8)
    image[0, 0] = (255, 51, 0)
    t = image_to_tensor(image)
    assert t.shape == (1, 3, 6, 4)
    assert t[0, :, 0, 0].tolist() == pytest.approx([1.0, 0.2, 0.0])
    with pytest.raises(ValueError):
        image_to_tensor(image.astype(np.float32))
    model = create_model("tiny", 3).eval()
    x = torch.rand(2, 3, 20, 28)
    assert predict_logits(model, x).shape == (2, 3, 20, 28)
    assert torch.equal(predict_logits(model, x), model(x))
    resized = predict_logits(model, x, input_size=(32, 16))
    assert resized.shape == (2, 3, 20, 28)
    assert not torch.allclose(resized, model(x))


def test_cli_models_list_json() -> None:
    result = CliRunner().invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["spec"]: r["parameters"] for r in json.loads(result.output)["models"]}
    assert rows["espnetv2:s=2.0"] == 789_231
    assert rows["segformer:b0"] == 3_719_027
    assert "mask2former:swin-l" in rows and "upernet:convnext-t" in rows


def test_cli_import_and_predict(tmp_path: Path, weights_dir: Path) -> None:
    runner = CliRunner()
    ck = tmp_path / "e05.ckpt"
    result = runner.invoke(
        app,
        [
            "models",
            "import",
            str(weights_dir / "espnetv2_s_0.5_city_1024x512.pth"),
            "--out",
            str(ck),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["spec"] == "espnetv2:s=0.5,background=true" and summary["num_classes"] == 19
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    result = runner.invoke(
        app,
        [
            "predict",
            "--checkpoint",
            str(ck),
            str(tmp_path / "a.jpg"),
            "--out",
            str(tmp_path / "o"),
            "--input-size",
            "64x64",
        ],
    )
    assert result.exit_code == 0, result.output
    ids = np.asarray(Image.open(tmp_path / "o" / "a.png"))
    overlay = np.asarray(Image.open(tmp_path / "o" / "a_overlay.png"))
    assert ids.shape == (40, 50) and ids.max() < 19
    assert overlay.shape == (40, 50, 3)
    bad = runner.invoke(
        app,
        [
            "predict",
            "--checkpoint",
            str(ck),
            str(tmp_path / "a.jpg"),
            "--out",
            str(tmp_path / "o"),
            "--input-size",
            "64",
        ],
    )
    assert bad.exit_code != 0
