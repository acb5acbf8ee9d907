"""ONNX graphs and ``torch.export`` programs of a model (``--format onnx|torchscript``):
captured with symbolic batch, height and width, written, reloaded by their runtime and
checked against eager (:mod:`labelbridge.models.export` describes the files)."""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labelbridge.files import atomic_output, write_bytes_atomic
from labelbridge.models.checkpoint import LoadedModel
from labelbridge.models.export_check import (
    EXAMPLE_BATCH,
    EXAMPLE_SIZE,
    EXTRA_HINT,
    VERIFY_TOLERANCE,
    ExportError,
    check_shapes,
    first_line,
    package_versions,
    random_images,
    verify,
)
from labelbridge.models.export_sidecar import input_entry

#: What an ``onnx`` / ``torchscript`` graph returns: logits, or the argmax class ids.
HEADS: tuple[str, ...] = ("logits", "argmax")
#: ONNX opset of the exported graphs.
ONNX_OPSET: int = 18
#: Model file per format.
MODEL_FILES: dict[str, str] = {"onnx": "model.onnx", "torchscript": "model.pt2"}
#: Name of the graphs' input.
INPUT_NAME: str = "images"
#: Name of the graphs' output per head.
OUTPUT_NAMES: dict[str, str] = {"logits": "logits", "argmax": "class_ids"}
#: Start of a FutureWarning torch's ONNX exporter raises inside torch (not ours to fix).
TORCH_PYTREE_WARNING: str = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
#: Largest class count whose ids fit the uint8 argmax output.
UINT8_CLASSES: int = 255


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
    example = random_images((EXAMPLE_BATCH, 3, *hw))
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
            f"{what}: torch.export cannot capture the model with {sizes}: {first_line(exc)}{hint}"
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
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # torch's own decomposition pass trips torch's pytree deprecation (torch 2.13)
        warnings.filterwarnings("ignore", message=TORCH_PYTREE_WARNING, category=FutureWarning)
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


def graph_export(
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
            model,
            name=INPUT_NAME,
            in_graph=True,
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
        "versions": package_versions(
            *(("onnx", "onnxscript", "onnxruntime") if fmt == "onnx" else ())
        ),
    }
    return [path], sidecar
