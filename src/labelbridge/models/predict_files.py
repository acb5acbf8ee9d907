"""``labelbridge predict``: segment image files, folders and glob patterns with a model and
write, per image, its train ids (``<key>.png``), optionally a colour overlay
(``<key>_overlay.png``) and the class probabilities (``<key>_probs.npz``).

An image's key is its file stem, or, for images found in a folder given as input, its
path relative to that folder without the suffix (so ``a/x.png`` and ``b/x.png`` keep
apart). Every file is written atomically; images of one size share a forward pass.
"""

from __future__ import annotations

import glob
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from labelbridge.data.base import read_image
from labelbridge.errors import ResourceError, UserError
from labelbridge.files import encode_npz, write_bytes_atomic
from labelbridge.models.checkpoint import LoadedModel
from labelbridge.models.inference import image_to_tensor, predict_probabilities
from labelbridge.models.tta import TTAPredictor, is_out_of_memory
from labelbridge.progress import Progress
from labelbridge.viz.overlay import overlay_labels

#: File suffixes taken as images inside folders and glob matches (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Opacity of the class colours in overlays.
OVERLAY_ALPHA = 0.5
#: Characters that make an input a glob pattern.
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class ImageInput:
    """One image to segment: its file and the key its outputs are named by."""

    path: Path
    key: str


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def collect_images(args: Sequence[str | Path]) -> list[ImageInput]:
    """The images named by files, folders (searched recursively) and glob patterns
    (``**`` allowed), in the order given (each folder or pattern sorted).

    Raises:
        UserError: an input that is no file, folder or matching pattern, a folder or
            pattern without images, or two images with the same key (outputs would
            overwrite each other).
    """
    found: list[ImageInput] = []
    for arg in args:
        text = str(arg)
        path = Path(text)
        if path.is_file():
            found.append(ImageInput(path, path.stem))
        elif path.is_dir():
            images = sorted(p for p in path.rglob("*") if _is_image(p))
            if not images:
                raise UserError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found += [ImageInput(p, p.relative_to(path).with_suffix("").as_posix()) for p in images]
        elif any(c in text for c in _GLOB_CHARS):
            images = sorted(Path(p) for p in glob.glob(text, recursive=True) if _is_image(Path(p)))
            if not images:
                raise UserError(f"{text}: the pattern matches no images")
            found += [ImageInput(p, p.stem) for p in images]
        else:
            raise UserError(f"{text}: no such file or folder")
    keys = [i.key for i in found]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise UserError(
            f"images share output names {twice[:8]}; outputs would overwrite each other"
        )
    return found


def _png(array: np.ndarray) -> bytes:
    """``(H, W)`` uint8/uint16 ids or ``(H, W, 3)`` uint8 RGB -> PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def predict_images(
    loaded: LoadedModel,
    images: Sequence[ImageInput],
    out: Path,
    *,
    input_size: tuple[int, int] | None = None,
    batch_size: int = 1,
    tta: TTAPredictor | None = None,
    overlay: bool = True,
    probabilities: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Segment ``images`` with ``loaded.model`` (in eval mode, on its device) into ``out``.

    Args:
        loaded: the model and its taxonomy.
        images: from :func:`collect_images`.
        out: output folder (created).
        input_size: ``(W, H)`` the model sees; predictions are resized back.
        batch_size: images per forward pass (consecutive images of one size).
        tta: average over its scales and flip (:func:`predict_probabilities`).
        overlay: write ``<key>_overlay.png`` (class colours over the image).
        probabilities: write ``<key>_probs.npz``: ``probabilities`` ``(C, H, W)`` float16
            and ``classes`` (the taxonomy's train class names).
        progress: a bar (or progress lines) on stderr.

    Returns:
        Per image: ``{"image", "ids", "overlay"?, "probabilities"?}`` paths as strings.

    Raises:
        SampleError: an unreadable image (named).
        ResourceError: out of memory (the message suggests a smaller ``--input-size``).
    """
    tax = loaded.taxonomy
    id_dtype = np.uint8 if tax.num_classes <= 256 else np.uint16
    names = np.array(tax.train_names)
    written: list[dict[str, Any]] = []
    bar = Progress(total=len(images), desc="predict", unit="images", enabled=progress)

    def run(batch: list[tuple[ImageInput, np.ndarray]]) -> None:
        x = torch.cat([image_to_tensor(im) for _, im in batch])
        try:
            probs = predict_probabilities(loaded.model, x, input_size=input_size, tta=tta)
        except (RuntimeError, MemoryError) as exc:
            if not is_out_of_memory(exc):
                raise
            height, width = batch[0][1].shape[:2]
            param = next(loaded.model.parameters(), None)
            device = param.device if param is not None else "cpu"
            what = "this" if len(batch) == 1 else f"a batch of {len(batch)} images like this"
            raise ResourceError(
                f"{batch[0][0].path}: out of memory segmenting {what} {width}x{height} image "
                f"on {device}; pass a smaller --input-size (e.g. {width // 2}x{height // 2}), "
                "a smaller --batch-size, or use a device with more memory"
            ) from None
        ids = probs.argmax(dim=1).cpu().numpy().astype(id_dtype)
        for j, (item, image) in enumerate(batch):
            row = {"image": str(item.path), "ids": str(out / f"{item.key}.png")}
            write_bytes_atomic(out / f"{item.key}.png", _png(ids[j]))
            if overlay:
                row["overlay"] = str(out / f"{item.key}_overlay.png")
                colours = overlay_labels(image, ids[j], tax, alpha=OVERLAY_ALPHA)
                write_bytes_atomic(out / f"{item.key}_overlay.png", _png(colours))
            if probabilities:
                row["probabilities"] = str(out / f"{item.key}_probs.npz")
                arrays = {
                    "probabilities": probs[j].cpu().numpy().astype(np.float16),
                    "classes": names,
                }
                write_bytes_atomic(out / f"{item.key}_probs.npz", encode_npz(arrays))
            written.append(row)
        bar.update(len(batch))

    out.mkdir(parents=True, exist_ok=True)
    pending: list[tuple[ImageInput, np.ndarray]] = []
    try:
        for item in images:
            image = read_image(item.path)
            if pending and (len(pending) == batch_size or pending[0][1].shape != image.shape):
                run(pending)
                pending = []
            pending.append((item, image))
        if pending:
            run(pending)
    finally:
        bar.close()
    return written
