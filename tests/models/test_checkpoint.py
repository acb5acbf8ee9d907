"""Self-contained checkpoints: format, atomic save, round trip, Lightning layout,
published files, and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labelbridge.errors import CheckpointError, UserError
from labelbridge.models import (
    FORMAT_VERSION,
    ESPNetv2,
    checkpoint_meta,
    create_model,
    import_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from labelbridge.taxonomy import Taxonomy, load_taxonomy

torch.set_num_threads(1)


def _taxonomy(k: int) -> Taxonomy:
    return Taxonomy.from_dict(
        {
            "name": f"t{k}",
            "classes": [{"id": i, "name": f"c{i}", "color": [i, 0, 0]} for i in range(k)],
        }
    )


def test_checkpoint_meta_fields() -> None:
    tax = _taxonomy(3)
    meta = checkpoint_meta("tiny", 3, tax, epoch=4)
    assert meta == {
        "format_version": FORMAT_VERSION,
        "model_spec": "tiny",
        "num_classes": 3,
        "taxonomy": tax.to_dict(),
        "epoch": 4,
    }
    with pytest.raises(CheckpointError, match="3 classes"):
        checkpoint_meta("tiny", 5, tax)


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("tiny:width=8", 3)
    model(torch.rand(2, 3, 16, 16))  # move BatchNorm statistics away from their defaults
    path = save_checkpoint(
        tmp_path / "sub" / "m.pt",
        model,
        spec="tiny:width=8",
        taxonomy=_taxonomy(3),
        extra={"note": "x"},
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]  # no temporary left
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"labelbridge", "state_dict"}
    assert raw["labelbridge"]["model_spec"] == "tiny:width=8" and raw["labelbridge"]["note"] == "x"
    loaded = load_checkpoint(path)
    assert loaded.spec == "tiny:width=8"
    assert loaded.taxonomy.train_names == ["c0", "c1", "c2"]
    assert not loaded.model.training
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded.model(x), model.eval()(x))


def test_lightning_layout_strips_model_prefix(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("tiny:width=8", 3).eval()
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["criterion.weight"] = torch.ones(3)  # not part of the network
    ckpt = {
        "labelbridge": checkpoint_meta("tiny:width=8", 3, _taxonomy(3)),
        "state_dict": state,
        "pytorch-lightning_version": "2.5.0",
        "global_step": 10,
        "hyper_parameters": {"lr": 0.1},
    }
    torch.save(ckpt, tmp_path / "last.ckpt")
    loaded = load_checkpoint(tmp_path / "last.ckpt")
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded.model(x), model(x))


def test_published_file_loads_without_meta(weights_dir: Path, tmp_path: Path) -> None:
    loaded = load_checkpoint(weights_dir / "espnetv2_s_0.5_city_1024x512.pth")
    assert isinstance(loaded.model, ESPNetv2)
    assert loaded.model.s == 0.5 and loaded.model.background_channel
    assert (
        loaded.taxonomy.train_names[:2] == ["road", "sidewalk"]
        and loaded.taxonomy.num_classes == 19
    )
    # re-saved as a labelbridge checkpoint it gives the same outputs
    save_checkpoint(tmp_path / "e.pt", loaded.model, spec=loaded.spec, taxonomy=loaded.taxonomy)
    again = load_checkpoint(tmp_path / "e.pt")
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(again.model(x), loaded.model(x))


def test_published_file_into_other_taxonomy_is_refused(weights_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="20 channels but taxonomy 'camvid11' has 11 classes"):
        import_state_dict(
            weights_dir / "espnetv2_s_0.5_city_1024x512.pth", taxonomy=load_taxonomy("camvid11")
        )


def test_published_weights_init_a_student_with_reinit(weights_dir: Path) -> None:
    path = weights_dir / "espnetv2_s_0.5_city_1024x512.pth"
    student = create_model("espnetv2:s=0.5", 11, weights=path, reinit_classifier=True)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(
        student.bu_dec_l4.projection_layer.cbr[0].weight,
        state["bu_dec_l4.projection_layer.cbr.0.weight"],
    )
    assert student.bu_dec_l4.merge_layer[3].weight.shape == (11, 10, 1, 1)


def test_dicenet_file_is_recognised(weights_dir: Path) -> None:
    loaded = load_checkpoint(weights_dir / "dicenet_s_1.75_city_1024x512.pth")
    assert loaded.spec == "dicenet:s=1.75,background=true"
    assert loaded.taxonomy.name == "cityscapes"


def test_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt: checkpoint file not found"):
        load_checkpoint(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="junk.pt: not a PyTorch checkpoint"):
        load_checkpoint(junk)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="list.pt: not a checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="plain.pt: not a labelbridge checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_unknown_spec_and_key_mismatch(tmp_path: Path) -> None:
    model = create_model("tiny:width=8", 3)
    save_checkpoint(tmp_path / "a.pt", model, spec="tiny:width=8", taxonomy=_taxonomy(3))
    ckpt = torch.load(tmp_path / "a.pt", weights_only=True)
    ckpt["labelbridge"]["model_spec"] = "resnet:50"
    torch.save(ckpt, tmp_path / "spec.pt")
    with pytest.raises(
        CheckpointError, match=r"spec.pt: stored model spec 'resnet:50' cannot be built"
    ):
        load_checkpoint(tmp_path / "spec.pt")
    ckpt["labelbridge"]["model_spec"] = "tiny:width=16"
    torch.save(ckpt, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "shape.pt")
    assert "shape.pt" in str(
        err.value
    ) and "stem.0.weight file (8, 3, 3, 3) vs model (16, 3, 3, 3)" in str(err.value)
    ckpt["labelbridge"]["format_version"] = 99
    torch.save(ckpt, tmp_path / "v.pt")
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(tmp_path / "v.pt")
    assert issubclass(CheckpointError, UserError)


def test_one_loader_for_every_model_reference(tmp_path: Path) -> None:
    """Teachers of pseudo-labelling, distillation and the pipeline's evaluation all load
    through load_model: a checkpoint, or a spec + weights + taxonomy."""
    from labelbridge.errors import CheckpointError
    from labelbridge.models import create_model, load_model, save_checkpoint
    from labelbridge.taxonomy import load_taxonomy

    tax = load_taxonomy("camvid11")
    net = create_model("tiny", tax.num_classes)
    ckpt = save_checkpoint(tmp_path / "m.ckpt", net, spec="tiny", taxonomy=tax)
    from_file = load_model(checkpoint=ckpt)
    assert from_file.spec == "tiny" and from_file.taxonomy.same_train_space(tax)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    from_spec = load_model(spec="tiny", weights=tmp_path / "w.pth", taxonomy="camvid11")
    assert not from_spec.model.training and from_spec.taxonomy.name == "camvid11"
    saved, built = from_file.model.state_dict(), from_spec.model.state_dict()
    assert saved.keys() == built.keys()
    assert all(torch.equal(saved[k], built[k]) for k in saved)
    with pytest.raises(CheckpointError, match=r"gone\.ckpt: teacher checkpoint not found"):
        load_model(checkpoint=tmp_path / "gone.ckpt", what="teacher")
    with pytest.raises(CheckpointError, match=r"gone\.pth: teacher weights not found"):
        load_model(spec="tiny", weights=tmp_path / "gone.pth", taxonomy=tax, what="teacher")
    with pytest.raises(ValueError, match="give a checkpoint, or a model spec"):
        load_model(spec="tiny")
