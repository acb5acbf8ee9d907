"""Test-time augmentation: pass counts, exact flip handling, scales, OOM fallbacks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from labelbridge.constants import DEFAULT_TTA_SCALES
from labelbridge.errors import CheckpointError, ResourceError
from labelbridge.models.tta import LEVEL_NAMES, TTAPredictor, is_out_of_memory, scaled_size


class RecordingModel(nn.Module):
    """Logits: channel 0 = 10 * red channel + column ramp * ``ramp``; channel 1 = 0.

    Records the shape of every input and the inputs themselves.
    """

    def __init__(self, ramp: float = 0.0, num_classes: int = 2) -> None:
        super().__init__()
        self.ramp = ramp
        self.num_classes = num_classes
        self.calls: list[torch.Size] = []
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape)
        self.inputs.append(x.clone())
        b, _, h, w = x.shape
        cols = torch.arange(w, dtype=x.dtype).view(1, 1, w).expand(b, h, w)
        c0 = 10.0 * x[:, 0] + self.ramp * cols
        out = torch.zeros(b, self.num_classes, h, w)
        out[:, 0] = c0
        return out


def _images(b: int = 1, h: int = 4, w: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 3, h, w, generator=g)


def test_default_scales_run_fourteen_passes_each_once() -> None:
    model = RecordingModel()
    tta = TTAPredictor(model, num_classes=2, batch_scales=False)
    tta.predict(_images(h=8, w=8))
    assert tta.passes_per_image == 14
    assert len(model.calls) == 14
    sizes = sorted({tuple(s[-2:]) for s in model.calls})
    assert sizes == [(4, 4), (6, 6), (8, 8), (10, 10), (12, 12), (14, 14), (16, 16)]
    assert all(s[0] == 1 for s in model.calls)


def test_batch_scales_puts_flip_pair_in_one_pass() -> None:
    model = RecordingModel()
    tta = TTAPredictor(
        model, num_classes=2, scales=DEFAULT_TTA_SCALES, flip=True, batch_scales=True
    )
    tta.predict(_images(b=3, h=8, w=8))
    assert len(model.calls) == 7
    assert all(s[0] == 6 for s in model.calls)  # 3 images x (plain, flipped)


def test_flip_false_runs_no_flipped_pass() -> None:
    model = RecordingModel()
    img = _images()
    TTAPredictor(model, num_classes=2, scales=[1.0, 2.0], flip=False).predict(img)
    assert len(model.calls) == 2
    torch.testing.assert_close(model.inputs[0], img)  # scale 1: the image itself, unflipped


def test_single_scale_no_flip_is_one_plain_pass() -> None:
    model = RecordingModel()
    img = _images()
    probs = TTAPredictor(model, num_classes=2, scales=[1.0], flip=False).predict(img)
    assert len(model.calls) == 1
    torch.testing.assert_close(probs, torch.softmax(model(img), dim=1))


def test_flipped_pass_gets_flipped_input_and_is_flipped_back() -> None:
    model = RecordingModel()
    img = _images()
    probs = TTAPredictor(model, num_classes=2, scales=[1.0], flip=True, batch_scales=True).predict(
        img
    )
    (batch,) = model.inputs
    torch.testing.assert_close(batch[0], img[0])
    torch.testing.assert_close(batch[1], img[0].flip(-1))
    # a per-pixel model gives the same scores for the flipped image once flipped back
    torch.testing.assert_close(probs, torch.softmax(model(img), dim=1))


def test_flip_average_hand_computed() -> None:
    """Column ramp logits [0, 1] on a 1x2 black image: plain pass softmax -> p0 = [s(0), s(1)];
    flipped pass, flipped back -> [s(1), s(0)]; mean = (s(0) + s(1)) / 2 in both columns."""
    model = RecordingModel(ramp=1.0)
    img = torch.zeros(1, 3, 1, 2)
    probs = TTAPredictor(model, num_classes=2, scales=[1.0], flip=True).predict(img)

    def sig(v: float) -> float:
        return 1.0 / (1.0 + math.exp(-v))

    expected = (sig(0.0) + sig(1.0)) / 2
    assert probs[0, 0, 0, 0].item() == pytest.approx(expected, abs=1e-6)
    assert probs[0, 0, 0, 1].item() == pytest.approx(expected, abs=1e-6)
    no_flip = TTAPredictor(model, num_classes=2, scales=[1.0], flip=False).predict(img)
    assert no_flip[0, 0, 0].tolist() == pytest.approx([sig(0.0), sig(1.0)], abs=1e-6)


def test_scaled_predictions_are_resized_to_native_size() -> None:
    model = RecordingModel()
    img = _images(h=5, w=7)
    probs = TTAPredictor(model, num_classes=2, scales=[0.5, 1.5], flip=True).predict(img)
    assert probs.shape == (1, 2, 5, 7)
    assert [tuple(s[-2:]) for s in model.calls] == [scaled_size(5, 7, 0.5), scaled_size(5, 7, 1.5)]
    assert scaled_size(5, 7, 0.5) == (2, 4)  # round(2.5) = 2 (banker's), round(3.5) = 4
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 5, 7))


def test_wrong_channel_count_is_a_checkpoint_error() -> None:
    model = RecordingModel(num_classes=3)
    with pytest.raises(CheckpointError, match="expected"):
        TTAPredictor(model, num_classes=2, scales=[1.0]).predict(_images())


class OomOnceModel(RecordingModel):
    """Raises a CUDA-style out-of-memory error the first ``times`` times it sees ``oom_size``."""

    def __init__(self, oom_size: tuple[int, int], times: int = 1) -> None:
        super().__init__(ramp=0.3)
        self.oom_size = oom_size
        self.left = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == self.oom_size and self.left > 0:
            self.left -= 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(x)


def test_oom_at_scale_two_falls_back_to_single_passes_without_dropping_it() -> None:
    img = _images(b=2, h=4, w=6)
    reference = TTAPredictor(RecordingModel(ramp=0.3), num_classes=2, scales=[1.0, 2.0]).predict(
        img
    )
    model = OomOnceModel(oom_size=(8, 12))
    tta = TTAPredictor(model, num_classes=2, scales=[1.0, 2.0])
    probs = tta.predict(img)
    torch.testing.assert_close(probs, reference)
    assert [(e.scale, e.level) for e in tta.events] == [(2.0, LEVEL_NAMES[1])]
    scale2 = [s for s in model.calls if tuple(s[-2:]) == (8, 12)]
    assert [s[0] for s in scale2] == [1, 1, 1, 1]  # 2 images x (plain, flipped), one at a time
    # the fallback level sticks for later batches
    model.calls.clear()
    tta.predict(img)
    assert [s[0] for s in model.calls if tuple(s[-2:]) == (8, 12)] == [1, 1, 1, 1]
    assert len(tta.events) == 1


def test_oom_with_nothing_left_to_try_raises_instead_of_dropping_the_scale() -> None:
    model = OomOnceModel(oom_size=(8, 12), times=10)
    with pytest.raises(ResourceError, match="scale 2.0: out of memory"):
        TTAPredictor(model, num_classes=2, scales=[1.0, 2.0]).predict(_images(h=4, w=6))


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))
