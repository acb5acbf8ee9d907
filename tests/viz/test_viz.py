"""Palettes, overlays and the ontology matrix picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from labelbridge.cli import main
from labelbridge.constants import IGNORE_INDEX
from labelbridge.taxonomy import Ontology, load_ontology, load_taxonomy
from labelbridge.viz import blend, colorize, colorize_raw, overlay_labels, train_palette
from labelbridge.viz.ontology_matrix import (
    ALLOWED_COLOR,
    IGNORE_ROW_COLOR,
    POLICY_COLOR,
    cell_kinds,
    plot_ontology_matrix,
)


def test_colorize_train_ids_with_palette() -> None:
    cam = load_taxonomy("camvid11")
    ids = np.array([[0, 3], [IGNORE_INDEX, 10]], dtype=np.uint8)
    rgb = colorize(ids, cam, ignore_color=(1, 2, 3))
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == [128, 128, 128]  # Sky
    assert rgb[0, 1].tolist() == [128, 64, 128]  # Road
    assert rgb[1, 0].tolist() == [1, 2, 3]  # ignore
    assert rgb[1, 1].tolist() == [0, 128, 192]  # Bicyclist
    assert train_palette(cam).shape == (256, 3)
    with pytest.raises(ValueError, match=r"values \[11, 40\] are not train ids"):
        colorize(np.array([[11, 40]]), cam)
    with pytest.raises(ValueError, match="integers"):
        colorize(np.zeros((2, 2)), cam)


def test_colorize_raw_ids() -> None:
    cs = load_taxonomy("cityscapes")
    rgb = colorize_raw(np.array([[7, 26, 0]]), cs)
    assert rgb[0].tolist() == [[128, 64, 128], [0, 0, 142], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"\[34\]"):
        colorize_raw(np.array([[34]]), cs)


def test_overlay_blends_and_keeps_ignored_pixels() -> None:
    cam = load_taxonomy("camvid11")
    image = np.full((1, 2, 3), 100, dtype=np.uint8)
    ids = np.array([[3, IGNORE_INDEX]])
    out = overlay_labels(image, ids, cam, alpha=0.25)
    # Road (128, 64, 128) at 25 % over grey 100: 0.75*100 + 0.25*c
    assert out[0, 0].tolist() == [107, 91, 107]
    assert out[0, 1].tolist() == [100, 100, 100]
    assert blend(image, np.zeros_like(image), alpha=1.0).max() == 0
    with pytest.raises(ValueError, match="alpha"):
        blend(image, image, alpha=1.5)
    with pytest.raises(ValueError, match="does not match"):
        overlay_labels(image, np.zeros((2, 2), dtype=int), cam)


def _colour_present(png: Path, hex_color: str) -> bool:
    rgb = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    target = np.round(np.array(to_rgb(hex_color)) * 255).astype(int)
    return bool((np.abs(rgb.astype(int) - target).sum(axis=1) == 0).any())


def test_ontology_matrix_cells_and_picture(tmp_path: Path) -> None:
    onto = load_ontology("camvid11_to_cityscapes")
    kinds = cell_kinds(onto)
    assert kinds.shape == (12, 19)  # all 12 CamVid classes (Unlabelled included) x 19 Cityscapes
    cam, cs = onto.extra, onto.source
    assert kinds[cam.classes.index(cam.get("Car")), cs.train_id_of("truck")] == 1
    assert kinds[cam.classes.index(cam.get("Car")), cs.train_id_of("road")] == 0
    assert (kinds[cam.classes.index(cam.get("Unlabelled"))] == 2).all()  # unconstrained policy
    out = plot_ontology_matrix(onto, tmp_path / "sub" / "m.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 800 and im.height > 600
    assert _colour_present(out, ALLOWED_COLOR) and _colour_present(out, POLICY_COLOR)


def test_ontology_matrix_ignore_rows(tmp_path: Path) -> None:
    onto = Ontology.from_dict(
        {
            "source": "camvid11",
            "extra": "idd_level1",
            "mapping": {
                "drivable": ["Road"],
                "non-drivable": "ignore",
                "living things": ["Pedestrian", "Bicyclist"],
                "vehicles": ["Car"],
                "road-side objects": ["Pole", "SignSymbol", "Fence"],
                "far objects": ["Building", "Tree"],
                "sky": ["Sky"],
            },
        }
    )
    kinds = cell_kinds(onto)
    assert (kinds[1] == 3).all() and (kinds[7] == 3).all()  # non-drivable -> ignore; ignored class
    out = plot_ontology_matrix(onto, tmp_path / "idd.png", title="IDD")
    assert _colour_present(out, IGNORE_ROW_COLOR) and not _colour_present(out, POLICY_COLOR)


def test_cli_ontology_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "show.png"
    main(["ontology", "show", "camvid11_to_cityscapes", "--out", str(out)])
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
