"""``labelbridge predict`` and ``evaluate --tta``: inputs from files, folders and globs,
outputs named apart, batches of mixed sizes, probabilities that agree with the ids, and
TTA as the pseudo-labeller computes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labelbridge.errors import UserError
from labelbridge.evaluation import evaluate_model
from labelbridge.models import TinySegNet
from labelbridge.models.checkpoint import LoadedModel
from labelbridge.models.inference import image_to_tensor, predict_logits, predict_probabilities
from labelbridge.models.predict_files import collect_images, predict_images
from labelbridge.models.tta import TTAPredictor
from labelbridge.taxonomy import load_taxonomy

torch.set_num_threads(1)


def _image(path: Path, size: tuple[int, int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def loaded() -> LoadedModel:
    tax = load_taxonomy("camvid11")
    torch.manual_seed(0)
    return LoadedModel(TinySegNet(tax.num_classes).eval(), tax, "tiny", {})


def test_inputs_from_files_folders_and_globs(tmp_path: Path) -> None:
    a = _image(tmp_path / "in" / "day" / "f1.png", (32, 24), 0)
    b = _image(tmp_path / "in" / "night" / "f1.jpg", (32, 24), 1)
    c = _image(tmp_path / "loose" / "c.png", (40, 24), 2)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    got = collect_images([tmp_path / "in", str(c)])
    assert [(i.path, i.key) for i in got] == [(a, "day/f1"), (b, "night/f1"), (c, "c")]
    pattern = collect_images([str(tmp_path / "in" / "**" / "*.png")])
    assert [i.path for i in pattern] == [a]
    with pytest.raises(UserError, match="share output names \\['f1'\\]"):
        collect_images([str(tmp_path / "in" / "**" / "f1.*")])
    with pytest.raises(UserError, match="missing.png: no such file or folder"):
        collect_images([tmp_path / "missing.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: folder holds no images"):
        collect_images([tmp_path / "empty"])
    with pytest.raises(UserError, match="matches no images"):
        collect_images([str(tmp_path / "*.webp")])


def test_predictions_batches_and_probabilities(tmp_path: Path, loaded: LoadedModel) -> None:
    paths = [
        _image(tmp_path / "in" / "a.png", (32, 24), 0),
        _image(tmp_path / "in" / "b.png", (32, 24), 1),
        _image(tmp_path / "in" / "c.png", (48, 40), 2),  # another size: its own batch
    ]
    inputs = collect_images([tmp_path / "in"])
    one = predict_images(loaded, inputs, tmp_path / "one", batch_size=1, progress=False)
    many = predict_images(
        loaded, inputs, tmp_path / "many", batch_size=3, probabilities=True, progress=False
    )
    assert [Path(r["ids"]).name for r in many] == ["a.png", "b.png", "c.png"]
    for path, r1, r3 in zip(paths, one, many, strict=True):
        ids = np.asarray(Image.open(r3["ids"]))
        assert np.array_equal(ids, np.asarray(Image.open(r1["ids"])))
        image = np.asarray(Image.open(path).convert("RGB"))
        with torch.no_grad():
            expected = predict_logits(loaded.model, image_to_tensor(image)).argmax(1)[0].numpy()
        assert np.array_equal(ids, expected)
        with np.load(r3["probabilities"]) as npz:
            probs, classes = npz["probabilities"], list(npz["classes"])
        assert probs.dtype == np.float16 and probs.shape == (11, *ids.shape)
        assert np.allclose(probs.astype(np.float32).sum(0), 1.0, atol=5e-3)
        assert classes == loaded.taxonomy.train_names
        assert np.asarray(Image.open(r3["overlay"])).shape == (*ids.shape, 3)
        assert "probabilities" not in r1
    none = predict_images(loaded, inputs[:1], tmp_path / "bare", overlay=False, progress=False)
    assert set(none[0]) == {"image", "ids"} and not (tmp_path / "bare" / "a_overlay.png").exists()


def test_tta_is_the_pseudo_labellers(loaded: LoadedModel) -> None:
    x = torch.rand(2, 3, 24, 32)
    single = TTAPredictor(loaded.model, num_classes=11, scales=[1.0], flip=False)
    plain = torch.softmax(predict_logits(loaded.model, x), dim=1)
    assert torch.allclose(predict_probabilities(loaded.model, x, tta=single), plain, atol=1e-6)
    assert torch.allclose(predict_probabilities(loaded.model, x), plain, atol=1e-6)
    tta = TTAPredictor(loaded.model, num_classes=11, scales=[0.5, 1.0], flip=True)
    by_hand = torch.stack(
        [
            torch.softmax(predict_logits(loaded.model, x, input_size=(16, 12)), 1),
            torch.softmax(predict_logits(loaded.model, x.flip(-1), input_size=(16, 12)), 1).flip(
                -1
            ),
            torch.softmax(predict_logits(loaded.model, x), 1),
            torch.softmax(predict_logits(loaded.model, x.flip(-1)), 1).flip(-1),
        ]
    ).mean(0)
    assert torch.allclose(predict_probabilities(loaded.model, x, tta=tta), by_hand, atol=1e-5)


def test_evaluate_with_tta(tmp_path: Path, loaded: LoadedModel) -> None:
    from benchmarks.common.layouts import make_camvid
    from labelbridge.data import create_dataset

    fx = make_camvid(tmp_path / "camvid")
    reader = create_dataset("camvid", fx.root, "train")
    plain = evaluate_model(loaded.model, reader, model_taxonomy=loaded.taxonomy, progress=False)
    single = TTAPredictor(loaded.model, num_classes=11, scales=[1.0], flip=False)
    same = evaluate_model(
        loaded.model, reader, model_taxonomy=loaded.taxonomy, progress=False, tta=single
    )
    assert same.to_dict() == plain.to_dict()
    tta = TTAPredictor(loaded.model, num_classes=11, scales=[0.5, 1.0], flip=True)
    got = evaluate_model(
        loaded.model, reader, model_taxonomy=loaded.taxonomy, progress=False, tta=tta
    )
    # by hand: the argmax of the averaged probabilities, scored per pixel
    correct = total = 0
    for s in reader.iter_samples():
        probs = predict_probabilities(loaded.model, image_to_tensor(s.image), tta=tta)
        pred = probs.argmax(1)[0].numpy()
        gt = reader.taxonomy.to_train_ids(s.label)
        valid = gt != 255
        correct += int((pred[valid] == gt[valid]).sum())
        total += int(valid.sum())
    assert got.to_dict()["pixel_accuracy"] == pytest.approx(correct / total, abs=1e-9)
