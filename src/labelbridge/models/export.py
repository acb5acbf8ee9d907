"""Export a model for deployment: an ONNX graph, a ``torch.export`` program, or a Hugging
Face folder, each beside its sidecar ``labelbridge_export.json``
(:mod:`labelbridge.models.export_sidecar`).

``onnx`` and ``torchscript`` files compute exactly the model's
:meth:`~labelbridge.models.base.SegmentationModel.forward`, normalisation included::

    input   images     float32 (B, 3, H, W), RGB in [0, 1]; the graph subtracts the mean,
                       divides by the std, pads H and W up to a multiple of the size
                       divisor (edge pixels repeated) and crops the output back
    output  logits     float32 (B, C, H, W)            (head="logits")
            class_ids  uint8 (B, H, W), int64 above 255 classes  (head="argmax")

Batch, height and width stay symbolic: the graph is captured by ``torch.export`` with
``Dim.AUTO`` sizes from a ``2 x 3 x 256 x 512`` example, and the size ranges the exporter
proved are recorded (ESPNetv2 and TinySegNet: any side from 2; the Hugging Face models:
sides from 33; DiCENet: sides from 225, below which its dimension-wise convolutions take
other operations). When the exporter cannot keep the height or width symbolic, the
export stops with an error suggesting ``size`` (a graph of that one size); there is no
silent fallback.

``torchscript`` writes a ``torch.export`` program (``model.pt2``, loaded with
``torch.export.load(path).module()``), not a ``torch.jit`` file: ``torch.jit.trace`` is
deprecated in torch 2.x and records the example's sizes as constants (ESPNetv2's pyramid
pooling sizes), so a trace runs silently wrong at another input size (max |logit
difference| 9.8 for an ESPNetv2 s=0.5 traced at 256x512 and run at 128x192).

``hf`` writes what ``save_pretrained`` writes (``config.json``, ``model.safetensors``) with
``id2label`` / ``label2id`` from the taxonomy, and a ``preprocessor_config.json`` whose
mean and std are the model's, for ``transformers.AutoModelForSemanticSegmentation`` and
``AutoImageProcessor``; for Hugging Face models only.

``hub`` writes a ``huggingface_hub`` model folder of any model (``config.json`` with the
checkpoint's meta, ``model.safetensors``, a model card; :mod:`labelbridge.models.hub`),
read by ``HubSegmentationModel.from_pretrained`` and, as a checkpoint, by every labelbridge
command.

Every export is checked before it is reported: the written file, run by its runtime
(onnxruntime, ``torch.export.load``, ``from_pretrained``), must reproduce PyTorch eager on
random inputs at two batch sizes and two image sizes (one not a multiple of the size
divisor); the differences are recorded in the sidecar.

Example::

    loaded = load_model(checkpoint="espnetv2_s_0.5_city_1024x512.pth")
    result = export_model(loaded, "onnx", "export/espnetv2", source="espnetv2_s_0.5_city_1024x512.pth")
    result.files  # [export/espnetv2/model.onnx, export/espnetv2/labelbridge_export.json]
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelbridge import __version__
from labelbridge.models.checkpoint import LoadedModel
from labelbridge.models.export_check import ExportError
from labelbridge.models.export_graph import (
    HEADS,
    ONNX_OPSET,
    DeployedModel,
    class_id_dtype,
    graph_export,
)
from labelbridge.models.export_hf import hf_export, hub_export
from labelbridge.models.export_sidecar import SIDECAR_VERSION, taxonomy_entry, write_sidecar

__all__ = [
    "FORMATS",
    "HEADS",
    "ONNX_OPSET",
    "DeployedModel",
    "ExportError",
    "ExportResult",
    "class_id_dtype",
    "export_model",
    "validate_options",
]

log = logging.getLogger(__name__)

#: Export formats.
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "hf", "hub")
#: Formats that write a model folder, and their writers.
FOLDER_FORMATS = {"hf": hf_export, "hub": hub_export}


@dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        folder: the export folder.
        files: the written files, the sidecar last.
        sidecar: the sidecar's content.
    """

    folder: Path
    files: list[Path]
    sidecar: dict[str, Any]


def _choice(value: str, valid: tuple[str, ...], option: str) -> str:
    if value not in valid:
        raise ExportError(f"{option} must be one of {', '.join(valid)}, got {value!r}")
    return value


def validate_options(fmt: str, head: str, size: tuple[int, int] | None) -> None:
    """Check the options of :func:`export_model` before any model is loaded.

    Raises:
        ExportError: an unknown format or head (the valid ones are listed), or ``head`` /
            ``size`` with ``hf``.
    """
    _choice(fmt, FORMATS, "--format")
    _choice(head, HEADS, "--head")
    if fmt in FOLDER_FORMATS and (head != "logits" or size is not None):
        raise ExportError("--head and --size apply to --format onnx and torchscript only")


def export_model(
    loaded: LoadedModel,
    fmt: str,
    out: str | Path,
    *,
    head: str = "logits",
    size: tuple[int, int] | None = None,
    source: str | Path | None = None,
) -> ExportResult:
    """Export ``loaded`` to ``out`` in ``fmt`` and write the sidecar; see the module doc.

    Args:
        loaded: the model with its taxonomy (:func:`labelbridge.models.load_model`).
        fmt: ``"onnx"``, ``"torchscript"`` (a ``torch.export`` program), ``"hf"`` (a
            transformers folder) or ``"hub"`` (a ``huggingface_hub`` model folder).
        out: the export folder (created; files of an earlier export are replaced).
        head: ``"logits"`` or ``"argmax"`` (``onnx`` and ``torchscript`` only).
        size: ``(width, height)`` of a graph of one size; ``None``: symbolic sizes.
        source: the checkpoint path, recorded (absolute) in the sidecar.

    Returns:
        The written files (the sidecar last) and the sidecar.

    Raises:
        ExportError: a bad format or head, a model the format cannot hold, an exporter
            failure, or an exported file that does not reproduce the model.
    """
    validate_options(fmt, head, size)
    what = f"{source or loaded.spec} ({loaded.spec})"
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    loaded.model.eval().cpu()
    if fmt in FOLDER_FORMATS:
        files, sidecar = FOLDER_FORMATS[fmt](loaded, folder, what=what)
    else:
        files, sidecar = graph_export(loaded, fmt, folder, head=head, size=size, what=what)
    sidecar = {
        "format_version": SIDECAR_VERSION,
        **sidecar,
        "model_spec": loaded.spec,
        "source_checkpoint": None if source is None else str(Path(source).resolve()),
        "taxonomy": taxonomy_entry(loaded.taxonomy),
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "labelbridge_version": __version__,
    }
    sidecar_path = write_sidecar(folder, sidecar)
    log.info("%s: exported as %s to %s", what, fmt, folder)
    return ExportResult(folder=folder, files=[*files, sidecar_path], sidecar=sidecar)
