"""DiCENet: dimension-wise convolutions by hand, structure, strict loading of the
published EdgeNets Cityscapes file and its accuracy on CamVid through the
camvid11 -> cityscapes projection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from camvid_eval import camvid_confusion, camvid_test_pairs
from labelbridge.errors import UserError
from labelbridge.models import create_model, load_checkpoint
from labelbridge.models.dicenet import (
    DiCE,
    DiCENet,
    ShuffleDiCEBlock,
    StridedDiCE,
    resize_along,
)

torch.set_num_threads(1)

#: The published file and its parameter count (BatchNorm statistics excluded); the
#: weights README lists 0.81 M.
PUBLISHED_FILE = "dicenet_s_1.75_city_1024x512.pth"
PUBLISHED_PARAMS = 807_940


def _shift_kernel(conv: torch.nn.Conv2d, *, row: int, col: int) -> None:
    """Make a depth-wise 3x3 conv copy its input from the kernel tap ``(row, col)``."""
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, 0, row, col] = 1.0


def test_resize_along_one_dimension_by_hand() -> None:
    x = torch.tensor([[0.0, 2.0]]).view(1, 1, 2, 1)
    grown = resize_along(x, 3, 2)  # bilinear, align_corners=True: 0, 1, 2
    assert grown.flatten().tolist() == pytest.approx([0.0, 1.0, 2.0])
    y = torch.tensor([1.0, 3.0, 5.0, 7.0]).view(1, 1, 1, 4)
    shrunk = resize_along(y, 2, 3)  # adaptive average pooling: pairs averaged
    assert shrunk.flatten().tolist() == pytest.approx([2.0, 6.0])
    assert resize_along(y, 4, 3) is y


def test_height_and_width_wise_convs_run_along_the_channels() -> None:
    """The height-wise conv sees the map as ``(B, H, C, W)`` and the width-wise one as
    ``(B, W, H, C)``: a kernel tap one step back along their first / second spatial axis
    copies channel ``c - 1`` into channel ``c`` (zero for ``c = 0``)."""
    dice = DiCE(4, 4, height=3, width=5).eval()
    x = torch.arange(4 * 3 * 5, dtype=torch.float32).view(1, 4, 3, 5)
    shifted = torch.cat([torch.zeros(1, 1, 3, 5), x[:, :3]], dim=1)
    _shift_kernel(dice.conv_height, row=0, col=1)  # axes (C, W): one channel back
    assert torch.equal(dice._height_wise(x), shifted)
    _shift_kernel(dice.conv_width, row=1, col=0)  # axes (H, C): one channel back
    assert torch.equal(dice._width_wise(x), shifted)
    # A map twice as high is pooled to the 3 rows of the conv and interpolated back.
    tall = torch.ones(1, 4, 6, 5)
    assert torch.equal(dice._height_wise(tall)[:, 1:], torch.ones(1, 3, 6, 5))


def test_units_change_channels_and_size() -> None:
    x = torch.rand(2, 8, 16, 12)
    assert DiCE(8, 12, height=4, width=4).eval()(x).shape == (2, 12, 16, 12)
    assert StridedDiCE(8, height=8, width=6).eval()(x).shape == (2, 16, 8, 6)
    block = ShuffleDiCEBlock(8, 14, height=16, width=12).eval()
    assert block.left_part == 4
    assert block(x).shape == (2, 14, 16, 12)


def test_forward_pads_odd_sizes_and_drops_background() -> None:
    model = DiCENet(19, s=0.5, background_channel=True).eval()
    assert model.eff_pool_128x128.merge_layer[3].weight.shape == (20, 10, 1, 1)
    with torch.no_grad():
        out = model.forward_outputs(torch.rand(1, 3, 50, 70))
    assert out["logits"].shape == (1, 19, 50, 70)
    assert out["features"].shape == (1, 96, 4, 6)  # padded to 64x96, stride 16


def test_zoo_specs() -> None:
    model = create_model("dicenet:s=1.75,background=true", 19)
    assert isinstance(model, DiCENet) and model.background_channel and model.s == 1.75
    with pytest.raises(UserError, match="s must be one of"):
        create_model("dicenet:s=3.0", 19)
    with pytest.raises(UserError, match="unknown option"):
        create_model("dicenet:depth=3", 19)


def test_published_file_loads_strictly(weights_dir: Path) -> None:
    state = torch.load(weights_dir / PUBLISHED_FILE, map_location="cpu", weights_only=True)
    model = DiCENet(19, s=1.75, background_channel=True)
    result = model.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS


def test_load_checkpoint_recognises_published_file(weights_dir: Path) -> None:
    loaded = load_checkpoint(weights_dir / PUBLISHED_FILE)
    assert loaded.spec == "dicenet:s=1.75,background=true"
    assert loaded.taxonomy.name == "cityscapes"
    assert loaded.model.num_classes == 19 and not loaded.model.training


def test_camvid_pixel_accuracy_few_images(weights_dir: Path, camvid_root: Path) -> None:
    """A broken import drops this far below 0.70 (0.825 seen with these 6 images)."""
    loaded = load_checkpoint(weights_dir / PUBLISHED_FILE)
    pairs = camvid_test_pairs(camvid_root)[::23][:6]
    conf = camvid_confusion(loaded.model, pairs, input_size=(480, 352))
    accuracy = np.trace(conf) / conf.sum()
    assert accuracy > 0.70, accuracy
