"""Hugging Face folders of a model, reloaded and checked against eager:

* ``--format hf`` (transformers models): what ``save_pretrained`` writes, with the
  taxonomy's labels and an image processor config, for the transformers auto classes;
* ``--format hub`` (every model): a ``huggingface_hub`` model folder
  (:mod:`labelbridge.models.hub`), read by ``HubSegmentationModel.from_pretrained`` and by
  labelbridge as a checkpoint."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from labelbridge.files import copy_file_atomic
from labelbridge.models.checkpoint import LoadedModel
from labelbridge.models.export_check import (
    EXAMPLE_SIZE,
    HF_TOLERANCE,
    ExportError,
    check_shapes,
    package_versions,
    verify,
)
from labelbridge.models.export_sidecar import input_entry
from labelbridge.models.hf import (
    PREPROCESSOR_FILE,
    HFSegmentationModel,
    normalization_from_processor,
    read_processor_config,
)

#: Sizes a folder's model serves (it pads and resizes itself).
ANY_SIZE: dict[str, dict[str, int | None]] = {
    "batch": {"min": 1, "max": None},
    "height": {"min": 1, "max": None},
    "width": {"min": 1, "max": None},
}


def save_into(out: Path, save: Callable[[Path], None]) -> list[Path]:
    """Run ``save`` on a fresh temporary folder inside ``out`` and move each file it wrote
    into ``out`` atomically (a crash leaves whole files); returns them, sorted."""
    written = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        folder = Path(tmp)
        save(folder)
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            copy_file_atomic(file, out / file.name)
            written.append(out / file.name)
    return written


def check_reloaded(
    model: torch.nn.Module, reloaded: torch.nn.Module, *, what: str
) -> list[dict[str, Any]]:
    """:func:`~labelbridge.models.export_check.verify` of a folder's reloaded model against
    ``model``: the example and a second batch and size, within :data:`HF_TOLERANCE`."""
    return verify(
        model,
        reloaded,
        check_shapes(EXAMPLE_SIZE, ANY_SIZE),
        head="logits",
        tolerance=HF_TOLERANCE,
        what=what,
    )


def hf_export(loaded: LoadedModel, out: Path, *, what: str) -> tuple[list[Path], dict[str, Any]]:
    import transformers

    model = loaded.model
    if not isinstance(model, HFSegmentationModel):
        raise ExportError(
            f"{what}: --format hf writes a transformers model folder, and {loaded.spec!r} is "
            "not a transformers model (hf:, segformer:, upernet: and mask2former: specs are); "
            "export it with --format hub (a Hugging Face Hub model folder), onnx or torchscript"
        )
    names = loaded.taxonomy.train_names
    config = model.hf.config  # the loaded model's own config takes the taxonomy's labels
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
    processor = model.processor_config_for_export()

    def save(folder: Path) -> None:
        model.hf.save_pretrained(folder)
        (folder / PREPROCESSOR_FILE).write_text(
            json.dumps(processor, indent=2) + "\n", encoding="utf-8"
        )

    written = save_into(out, save)
    auto_class = getattr(transformers, model.auto_class_name)
    reloaded = auto_class.from_pretrained(out, local_files_only=True).eval()
    image_processor = transformers.AutoImageProcessor.from_pretrained(out, local_files_only=True)
    mean, std = normalization_from_processor(image_processor.to_dict(), origin=str(out))
    saved, used = (*mean, *std), (*model.input_mean, *model.input_std)
    if max(abs(a - b) for a, b in zip(saved, used, strict=True)) > HF_TOLERANCE:
        raise ExportError(
            f"{what}: AutoImageProcessor reads mean {mean}, std {std} from {out}, "
            f"the model uses {model.input_mean}, {model.input_std}"
        )
    if [reloaded.config.id2label[i] for i in range(len(names))] != names:
        raise ExportError(f"{what}: the saved config's id2label differs from the taxonomy")
    twin = type(model)(model.num_classes, hf_model=reloaded, processor=read_processor_config(out))
    checks = check_reloaded(model, twin.eval(), what=f"{what} ({out})")
    sidecar = {
        "format": "hf",
        "files": {
            "config": "config.json",
            "weights": [p.name for p in written if p.suffix in (".safetensors", ".bin")],
            "image_processor": PREPROCESSOR_FILE,
        },
        "exporter": f"transformers save_pretrained ({type(model.hf).__name__})",
        "transformers_auto_class": model.auto_class_name,
        "input": input_entry(
            model,
            name="pixel_values",
            in_graph=False,
            sizes=ANY_SIZE,
            note=(
                "AutoImageProcessor computes pixel_values = (pixels / 255 - mean) / std; "
                "labelbridge pads H and W to multiples of size_divisor (edge pixels "
                "repeated) and resizes the logits bilinearly to the input size, the raw "
                "transformers model does neither"
            ),
        ),
        "image_processor": {
            "type": type(image_processor).__name__,
            "size": processor.get("size"),
            "do_resize": processor.get("do_resize"),
        },
        "output": {
            "name": "logits",
            "kind": "logits",
            "dtype": "float32",
            "note": "the transformers model's own outputs (SegFormer: logits at 1/4 of the "
            "input resolution); class id i is config.id2label[i]",
        },
        "verification": {
            "reference": "PyTorch eager (this labelbridge model)",
            "runtime": f"{model.auto_class_name}.from_pretrained, in the labelbridge wrapper",
            "checks": checks,
            "image_processor_mean_std_match": True,
        },
        "versions": package_versions("transformers", "safetensors"),
    }
    return written, sidecar


def hub_export(loaded: LoadedModel, out: Path, *, what: str) -> tuple[list[Path], dict[str, Any]]:
    """A Hub model folder of any model (:mod:`labelbridge.models.hub`), reloaded by
    ``HubSegmentationModel.from_pretrained`` and checked against eager."""
    from labelbridge.models.hub import HUB_CONFIG_FILE, HUB_WEIGHTS_FILE, HubSegmentationModel

    model = loaded.model
    hub = HubSegmentationModel.from_loaded(loaded)
    written = save_into(out, hub.save_pretrained)
    reloaded = HubSegmentationModel.from_pretrained(out, local_files_only=True)
    if reloaded.spec != loaded.spec or reloaded.taxonomy.to_dict() != loaded.taxonomy.to_dict():
        raise ExportError(f"{what}: the Hub folder {out} reloads another spec or taxonomy")
    checks = check_reloaded(model, reloaded, what=f"{what} ({out})")
    sidecar = {
        "format": "hub",
        "files": {"config": HUB_CONFIG_FILE, "weights": HUB_WEIGHTS_FILE},
        "exporter": "huggingface_hub PyTorchModelHubMixin.save_pretrained "
        "(labelbridge.models.hub.HubSegmentationModel)",
        "input": input_entry(
            model,
            name="images",
            in_graph=True,
            sizes=ANY_SIZE,
            note="HubSegmentationModel.from_pretrained(folder or repo id)(images): RGB pixels "
            "/ 255; the model normalises, pads and crops itself",
        ),
        "output": {
            "name": "logits",
            "kind": "logits",
            "dtype": "float32",
            "shape": ["batch", model.num_classes, "height", "width"],
            "note": "at the input resolution; channel i is taxonomy.class_names[i]",
        },
        "verification": {
            "reference": "PyTorch eager (this labelbridge model)",
            "runtime": "HubSegmentationModel.from_pretrained",
            "checks": checks,
        },
        "versions": package_versions("huggingface_hub", "safetensors"),
    }
    return written, sidecar
