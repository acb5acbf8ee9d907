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

import contextlib
import datetime as _dt
import json
import logging
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labelbridge import __version__
from labelbridge.errors import UserError
from labelbridge.files import atomic_output, copy_file_atomic, write_bytes_atomic
from labelbridge.models.checkpoint import LoadedModel
from labelbridge.models.export_sidecar import (
    SIDECAR_VERSION,
    input_entry,
    taxonomy_entry,
    write_sidecar,
)
from labelbridge.models.hf import (
    PREPROCESSOR_FILE,
    HFSegmentationModel,
    normalization_from_processor,
    read_processor_config,
)

log = logging.getLogger(__name__)

#: Export formats.
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "hf")
#: What an ``onnx`` / ``torchscript`` graph returns: logits, or the argmax class ids.
HEADS: tuple[str, ...] = ("logits", "argmax")
#: ONNX opset of the exported graphs.
ONNX_OPSET: int = 18
#: Model file per format (``hf`` writes a ``save_pretrained`` folder).
MODEL_FILES: dict[str, str] = {"onnx": "model.onnx", "torchscript": "model.pt2"}
#: Name of the graphs' input.
INPUT_NAME: str = "images"
#: Name of the graphs' output per head.
OUTPUT_NAMES: dict[str, str] = {"logits": "logits", "argmax": "class_ids"}
#: ``(H, W)`` of the example traced when no fixed size is asked for.
EXAMPLE_SIZE: tuple[int, int] = (256, 512)
#: Batch of the example (sides of 1 would be specialised by the exporter).
EXAMPLE_BATCH: int = 2
#: The second checked input is ``(1, 3, H + 24, W - 40)``: another batch, and sides that
#: are no multiples of 32.
CHECK_OFFSET: tuple[int, int] = (24, -40)
#: An export passes when ``max |exported - eager| <= VERIFY_TOLERANCE * max(1, max |eager|)``.
VERIFY_TOLERANCE: float = 1e-3
#: A Hugging Face folder reloads the same weights and operations: a tighter bound.
HF_TOLERANCE: float = 1e-5
#: An argmax export passes when at least this share of pixels agrees with eager.
MIN_ARGMAX_AGREEMENT: float = 0.999
#: Largest class count whose ids fit the uint8 argmax output.
UINT8_CLASSES: int = 255
#: Seed of the random check inputs.
CHECK_SEED: int = 0
#: Hint for missing optional packages.
EXTRA_HINT: str = "install the export extra: pip install 'labelbridge[export]'"


class ExportError(UserError):
    """A model cannot be exported as asked, or the exported file does not reproduce it."""


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


class DeployedModel(nn.Module):
    """A model's :meth:`forward`, optionally followed by the argmax over the classes.

    Args:
        model: the model (in eval mode).
        head: ``"logits"`` (``(B, C, H, W)`` float) or ``"argmax"`` (``(B, H, W)`` class
            ids, uint8 for up to 255 classes, else int64).
    """

    def __init__(self, model: nn.Module, head: str) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.id_dtype = class_id_dtype(model.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.model(images)
        if self.head == "argmax":
            return logits.argmax(dim=1).to(self.id_dtype)
        return logits


def class_id_dtype(num_classes: int) -> torch.dtype:
    """dtype of argmax class ids: uint8 up to :data:`UINT8_CLASSES` classes, else int64."""
    return torch.uint8 if num_classes <= UINT8_CLASSES else torch.int64


def _choice(value: str, valid: tuple[str, ...], option: str) -> str:
    if value not in valid:
        raise ExportError(f"{option} must be one of {', '.join(valid)}, got {value!r}")
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _random_images(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(CHECK_SEED))


def _versions(*packages: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"labelbridge": __version__, "torch": torch.__version__}
    for name in packages:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


# --------------------------------------------------------------------- torch.export
def capture(
    module: nn.Module, hw: tuple[int, int], *, dynamic: bool, what: str
) -> torch.export.ExportedProgram:
    """``torch.export`` of ``module`` on a ``(EXAMPLE_BATCH, 3, *hw)`` example, the batch
    symbolic, and the height and width too when ``dynamic``.

    Raises:
        ExportError: the exporter fails (its first message line is quoted).
    """
    from torch.export import Dim

    dims = {0: Dim.AUTO, **({2: Dim.AUTO, 3: Dim.AUTO} if dynamic else {})}
    example = _random_images((EXAMPLE_BATCH, 3, *hw))
    try:
        return torch.export.export(
            module, (example,), dynamic_shapes={INPUT_NAME: dims}, strict=False
        )
    except Exception as exc:  # the exporter raises many types
        hint = (
            "; pass --size WIDTHxHEIGHT to export a graph of that one size instead"
            if dynamic
            else ""
        )
        sizes = "a symbolic batch, height and width" if dynamic else "a symbolic batch"
        raise ExportError(
            f"{what}: torch.export cannot capture the model with {sizes}: {_first_line(exc)}{hint}"
        ) from exc


def input_ranges(
    program: torch.export.ExportedProgram, *, dynamic: bool, what: str
) -> tuple[dict[str, dict[str, int | None]], dict[str, str]]:
    """The ``batch``, ``height`` and ``width`` ranges ``{"min", "max"}`` (``None``: no
    bound) the exported program serves, and its symbol names per dimension.

    A batch of 1 is served (the exporter reasons about sizes from 2 and treats 1 like
    them; the export checks run a batch of 1).

    Raises:
        ExportError: the exporter made the height or width a constant although ``dynamic``
            (the message names ``--size``), or requires sizes of a special form.
    """
    import sympy

    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
    shape = node.meta["val"].shape
    ranges: dict[str, dict[str, int | None]] = {}
    symbols: dict[str, str] = {}
    for dim, label in ((0, "batch"), (2, "height"), (3, "width")):
        size = shape[dim]
        if isinstance(size, int):
            if dynamic or dim == 0:
                raise ExportError(
                    f"{what}: the exporter fixed the input {label} to {size} (the model's "
                    f"operations depend on it); pass --size WIDTHxHEIGHT to export a graph "
                    f"of one size"
                )
            ranges[label] = {"min": size, "max": size}
            continue
        expr = size.node.expr
        bounds = program.range_constraints.get(expr)
        if bounds is None:
            raise ExportError(
                f"{what}: the exporter requires the input {label} to be of the form {expr}; "
                f"pass --size WIDTHxHEIGHT to export a graph of one size"
            )
        # an unbounded side has torch's integer infinity, no sympy Integer, as its upper bound
        upper = int(bounds.upper) if isinstance(bounds.upper, sympy.Integer) else None
        lower = 1 if dim == 0 else int(bounds.lower)
        ranges[label] = {"min": lower, "max": upper}
        symbols[str(expr)] = label
    return ranges, symbols


def _clamp(value: int, bounds: dict[str, int | None]) -> int:
    low, high = bounds["min"] or 1, bounds["max"]
    return max(low, value if high is None else min(value, high))


def check_shapes(
    hw: tuple[int, int], ranges: dict[str, dict[str, int | None]]
) -> list[tuple[int, int, int, int]]:
    """The inputs an export is checked on: the example, and a batch of 1 at other sizes
    (offset by :data:`CHECK_OFFSET`, kept inside the served ranges)."""
    h, w = hw
    second = (
        1,
        3,
        _clamp(h + CHECK_OFFSET[0], ranges["height"]),
        _clamp(w + CHECK_OFFSET[1], ranges["width"]),
    )
    return [(EXAMPLE_BATCH, 3, h, w), second]


# --------------------------------------------------------------------- checks
def verify(
    reference: Callable[[torch.Tensor], torch.Tensor],
    runner: Callable[[torch.Tensor], torch.Tensor],
    shapes: list[tuple[int, int, int, int]],
    *,
    head: str,
    tolerance: float,
    what: str,
    hint: str = "",
) -> list[dict[str, Any]]:
    """Run ``runner`` (the exported file) and ``reference`` (eager) on seeded random
    ``[0, 1]`` inputs of ``shapes``.

    Returns:
        Per shape: ``{"shape", "max_abs_diff", "tolerance"}`` (logits; the tolerance is
        ``tolerance * max(1, max |eager|)``) or ``{"shape", "agreement"}`` (argmax).

    Raises:
        ExportError: the runtime fails, or the outputs differ in shape, dtype, or beyond
            the tolerance (or :data:`MIN_ARGMAX_AGREEMENT`); ``hint`` ends the message.
    """
    checks = []
    for shape in shapes:
        images = _random_images(shape)
        with torch.no_grad():
            expected = reference(images)
            try:
                got = runner(images)
            except Exception as exc:  # any runtime's error
                raise ExportError(
                    f"{what}: the exported file fails on an input of shape {list(shape)}: "
                    f"{_first_line(exc)}{hint}"
                ) from exc
        if got.shape != expected.shape or got.dtype != expected.dtype:
            raise ExportError(
                f"{what}: the exported file returns {tuple(got.shape)} {got.dtype} for an "
                f"input of shape {list(shape)}, PyTorch {tuple(expected.shape)} {expected.dtype}{hint}"
            )
        if head == "argmax":
            agreement = float((got == expected).double().mean())
            checks.append({"shape": list(shape), "agreement": agreement})
            if agreement < MIN_ARGMAX_AGREEMENT:
                raise ExportError(
                    f"{what}: the exported class ids agree with PyTorch on only "
                    f"{100 * agreement:.3f}% of the pixels of an input of shape {list(shape)}{hint}"
                )
            continue
        diff = float((got.double() - expected.double()).abs().max())
        bound = tolerance * max(1.0, float(expected.abs().max()))
        checks.append({"shape": list(shape), "max_abs_diff": diff, "tolerance": bound})
        if not diff <= bound:
            raise ExportError(
                f"{what}: the exported file's logits differ from PyTorch by up to {diff:.3g} "
                f"(allowed {bound:.3g}) on an input of shape {list(shape)}{hint}"
            )
    return checks


# --------------------------------------------------------------------- writers
def _write_onnx(
    program: torch.export.ExportedProgram, path: Path, symbols: dict[str, str], output: str
) -> None:
    """The ONNX graph of ``program`` (opset :data:`ONNX_OPSET`), its symbolic dimensions
    named ``batch``, ``height`` and ``width``."""
    try:
        import onnx  # noqa: F401  (the exporter needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ExportError(f"ONNX export needs {exc.name}: {EXTRA_HINT}") from None
    # the exporter reports its steps with print(): keep stdout for --json
    with contextlib.redirect_stdout(sys.stderr):
        onnx_program = torch.onnx.export(
            program,
            dynamo=True,
            opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME],
            output_names=[output],
            verbose=False,
        )
    proto = onnx_program.model_proto
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, symbols)) + r")\b") if symbols else None
    values = [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]
    for value in values if pattern else ():
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = pattern.sub(lambda m: symbols[m.group(0)], dim.dim_param)
    write_bytes_atomic(path, proto.SerializeToString())


def _onnx_runner(path: Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError(f"checking the ONNX file needs onnxruntime: {EXTRA_HINT}") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {INPUT_NAME: images.numpy()})[0])

    return run, f"onnxruntime {ort.__version__} (CPUExecutionProvider)"


def _write_program(program: torch.export.ExportedProgram, path: Path) -> None:
    with atomic_output(path) as fh:
        torch.export.save(program, fh)


def _program_runner(path: Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    module = torch.export.load(path).module()
    return module, f"torch.export.load (torch {torch.__version__})"


def _graph_export(
    loaded: LoadedModel,
    fmt: str,
    out: Path,
    *,
    head: str,
    size: tuple[int, int] | None,
    what: str,
) -> tuple[list[Path], dict[str, Any]]:
    model = loaded.model
    deployed = DeployedModel(model, head).eval()
    dynamic = size is None
    hw = EXAMPLE_SIZE if size is None else (size[1], size[0])
    program = capture(deployed, hw, dynamic=dynamic, what=what)
    ranges, symbols = input_ranges(program, dynamic=dynamic, what=what)
    path = out / MODEL_FILES[fmt]
    output = OUTPUT_NAMES[head]
    if fmt == "onnx":
        _write_onnx(program, path, symbols, output)
        runner, runtime = _onnx_runner(path)
        exporter = f"torch.onnx.export(dynamo=True) of a torch.export program, opset {ONNX_OPSET}"
    else:
        _write_program(program, path)
        runner, runtime = _program_runner(path)
        exporter = "torch.export (ExportedProgram; load with torch.export.load(path).module())"
    checks = verify(
        deployed,
        runner,
        check_shapes(hw, ranges) if dynamic else [(EXAMPLE_BATCH, 3, *hw), (1, 3, *hw)],
        head=head,
        tolerance=VERIFY_TOLERANCE,
        what=f"{what} ({path})",
        hint=(
            "; the file is left without a sidecar; pass --size WIDTHxHEIGHT to export a "
            "graph of one size"
            if dynamic
            else "; the file is left without a sidecar"
        ),
    )
    num_classes = model.num_classes
    out_shape: list[Any] = ["batch", "height", "width"]
    if head == "logits":
        out_shape.insert(1, num_classes)
    sidecar = {
        "format": fmt,
        "files": {"model": path.name},
        "exporter": exporter,
        **({"onnx_opset": ONNX_OPSET} if fmt == "onnx" else {}),
        "input": input_entry(
            name=INPUT_NAME,
            mean=model.input_mean,
            std=model.input_std,
            in_graph=True,
            size_divisor=model.size_divisor,
            padding_in_graph=True,
            sizes=ranges,
            note="feed RGB pixels / 255; the graph normalises, pads and crops itself"
            + (
                "; the ONNX graph does not check the height and width ranges (outside them "
                "it computes other values without an error)"
                if fmt == "onnx"
                else "; the program rejects sizes outside the ranges"
            ),
        ),
        "output": {
            "name": output,
            "kind": head,
            "dtype": str(torch.float32 if head == "logits" else deployed.id_dtype).removeprefix(
                "torch."
            ),
            "shape": out_shape,
            "note": "at the input resolution; channel / class id i is taxonomy.class_names[i]",
        },
        "verification": {"reference": "PyTorch eager", "runtime": runtime, "checks": checks},
        "versions": _versions(*(("onnx", "onnxscript", "onnxruntime") if fmt == "onnx" else ())),
    }
    return [path], sidecar


# --------------------------------------------------------------------- Hugging Face
def _hf_export(loaded: LoadedModel, out: Path, *, what: str) -> tuple[list[Path], dict[str, Any]]:
    import transformers

    model = loaded.model
    if not isinstance(model, HFSegmentationModel):
        raise ExportError(
            f"{what}: --format hf writes a transformers model folder, and {loaded.spec!r} is "
            "not a transformers model (hf:, segformer:, upernet: and mask2former: specs are); "
            "export it with --format onnx or --format torchscript"
        )
    names = loaded.taxonomy.train_names
    config = model.hf.config  # the loaded model's own config takes the taxonomy's labels
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
    processor = model.processor_config_for_export()
    written = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        folder = Path(tmp)
        model.hf.save_pretrained(folder)
        (folder / PREPROCESSOR_FILE).write_text(
            json.dumps(processor, indent=2) + "\n", encoding="utf-8"
        )
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            copy_file_atomic(file, out / file.name)
            written.append(out / file.name)
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
    checks = verify(
        model,
        twin.eval(),
        check_shapes(
            EXAMPLE_SIZE, {"height": {"min": 1, "max": None}, "width": {"min": 1, "max": None}}
        ),
        head="logits",
        tolerance=HF_TOLERANCE,
        what=f"{what} ({out})",
    )
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
            name="pixel_values",
            mean=model.input_mean,
            std=model.input_std,
            in_graph=False,
            size_divisor=model.size_divisor,
            padding_in_graph=False,
            sizes={
                "batch": {"min": 1, "max": None},
                "height": {"min": 1, "max": None},
                "width": {"min": 1, "max": None},
            },
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
        "versions": _versions("transformers", "safetensors"),
    }
    return written, sidecar


# --------------------------------------------------------------------- entry point
def validate_options(fmt: str, head: str, size: tuple[int, int] | None) -> None:
    """Check the options of :func:`export_model` before any model is loaded.

    Raises:
        ExportError: an unknown format or head (the valid ones are listed), or ``head`` /
            ``size`` with ``hf``.
    """
    _choice(fmt, FORMATS, "--format")
    _choice(head, HEADS, "--head")
    if fmt == "hf" and (head != "logits" or size is not None):
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
        fmt: ``"onnx"``, ``"torchscript"`` (a ``torch.export`` program) or ``"hf"``.
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
    if fmt == "hf":
        files, sidecar = _hf_export(loaded, folder, what=what)
    else:
        files, sidecar = _graph_export(loaded, fmt, folder, head=head, size=size, what=what)
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
