"""The sidecar of an exported model: ``labelbridge_export.json`` beside the model file.

It says everything a deployment needs besides the graph: the label space (class names,
colours, the ignore value), the input contract (dtype, layout, channel order, value
range, normalisation and whether the graph applies it, size divisor, the sizes the
graph serves), what the output is (logits or class ids), how the file was made (format,
exporter, opset, versions), the checkpoint it came from and the check against PyTorch
eager that the export passed. Written last, so a folder with a sidecar holds a complete
export.

Example (an ONNX export of the published ESPNetv2 s=0.5, abridged)::

    {"format": "onnx", "files": {"model": "model.onnx"}, "onnx_opset": 18,
     "taxonomy": {"name": "cityscapes", "num_classes": 19, "class_names": ["road", ...],
                  "colors": [[128, 64, 128], ...], "ignore_index": 255},
     "input": {"name": "images", "dtype": "float32", "layout": "NCHW", "channel_order": "RGB",
               "value_range": [0.0, 1.0], "normalization_in_graph": true,
               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
               "size_divisor": 32, "padding_in_graph": true,
               "batch": {"min": 1, "max": null}, "height": {"min": 2, "max": null}, ...},
     "output": {"name": "logits", "kind": "logits", "dtype": "float32",
                "shape": ["batch", 19, "height", "width"]}, ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import CheckpointError
from labelbridge.files import write_json_atomic
from labelbridge.models.base import SegmentationModel
from labelbridge.taxonomy import Taxonomy

#: File name of the sidecar in an export folder.
SIDECAR_FILE: str = "labelbridge_export.json"
#: Version of the sidecar layout written by this code.
SIDECAR_VERSION: int = 1


def taxonomy_entry(taxonomy: Taxonomy) -> dict[str, Any]:
    """The sidecar's ``"taxonomy"``: name, class names and RGB colours in train-id order
    (output channel / class id ``i`` is ``class_names[i]``), the value that marks
    ignored pixels in label maps, and the full definition (``Taxonomy.to_dict()``)."""
    return {
        "name": taxonomy.name,
        "num_classes": taxonomy.num_classes,
        "class_names": list(taxonomy.train_names),
        "colors": taxonomy.train_colors.tolist(),
        "ignore_index": IGNORE_INDEX,
        "definition": taxonomy.to_dict(),
    }


def input_entry(
    model: SegmentationModel,
    *,
    name: str,
    in_graph: bool,
    sizes: dict[str, dict[str, int | None]],
    note: str = "",
) -> dict[str, Any]:
    """The sidecar's ``"input"``: a float32 ``(B, 3, H, W)`` RGB batch in ``[0, 1]``, the
    model's normalisation ``(x - mean) / std`` and size divisor (inside the exported
    model, when ``in_graph``, the input is normalised, padded up to a multiple of the
    divisor, edge pixels repeated, and the output cropped back; else the caller does
    that), and the ``batch`` / ``height`` / ``width`` ranges served (``max: null``: no
    bound)."""
    return {
        "name": name,
        "dtype": "float32",
        "layout": "NCHW",
        "channel_order": "RGB",
        "value_range": [0.0, 1.0],
        "normalization_in_graph": in_graph,
        "mean": list(model.input_mean),
        "std": list(model.input_std),
        "size_divisor": model.size_divisor,
        "padding_in_graph": in_graph,
        **sizes,
        **({"note": note} if note else {}),
    }


def write_sidecar(folder: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` (with ``format_version``) as the folder's sidecar, atomically."""
    path = folder / SIDECAR_FILE
    write_json_atomic(path, {"format_version": SIDECAR_VERSION, **data})
    return path


def read_sidecar(folder: str | Path) -> dict[str, Any]:
    """The sidecar of an export folder.

    Raises:
        CheckpointError: no sidecar, not JSON, or another layout version.
    """
    path = Path(folder) / SIDECAR_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: no export sidecar (not a labelbridge export folder)"
        ) from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the export sidecar: {exc}") from None
    if not isinstance(data, dict) or data.get("format_version") != SIDECAR_VERSION:
        raise CheckpointError(
            f"{path}: sidecar format_version {data.get('format_version') if isinstance(data, dict) else None!r} "
            f"not supported (expected {SIDECAR_VERSION})"
        )
    return data
