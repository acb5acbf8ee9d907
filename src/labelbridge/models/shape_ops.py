"""Tensor operations whose exported graphs hold for every input size.

Exporters (``torch.export``, and ``torch.onnx.export(..., dynamo=True)`` on top of it)
record the image height and width as symbols. Most operations keep them symbolic, but
``F.adaptive_avg_pool2d`` to a size that does not divide the input is decomposed with
kernel lengths and index tables computed for the example input, so an ONNX graph
traced at one size computes wrong results (or fails) at another. The functions here
behave exactly like their ``torch.nn.functional`` counterparts in eager mode and switch
to a size-generic formulation only while a graph is being exported
(:func:`is_exporting`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Upper bound of ``ceil(n / out) + 1 - n // out`` over all sizes: adaptive pooling bins
#: span at most ``n // out + 2`` inputs.
_EXTRA_BIN_LENGTH: int = 2


def is_exporting() -> bool:
    """Whether a graph is being captured by ``torch.export`` (``False`` on torch releases
    without ``torch.compiler.is_exporting``)."""
    check = getattr(torch.compiler, "is_exporting", None)
    return bool(check()) if check is not None else False


def _adaptive_mean_along(x: torch.Tensor, out: int, dim: int) -> torch.Tensor:
    """Adaptive average pooling of ``x`` along ``dim`` to ``out`` values, with index
    tables computed from the (possibly symbolic) sizes: bin ``i`` averages the inputs
    ``floor(i n / out) .. ceil((i + 1) n / out) - 1``, as ``F.adaptive_avg_pool2d`` does."""
    n = x.shape[dim]
    bins = torch.arange(out, device=x.device)
    start = torch.div(bins * n, out, rounding_mode="floor")
    end = torch.div((bins + 1) * n + out - 1, out, rounding_mode="floor")
    length = n // out + _EXTRA_BIN_LENGTH
    offsets = torch.arange(length, device=x.device)
    index = (start.unsqueeze(1) + offsets).clamp(max=n - 1)  # (out, length)
    inside = (offsets < (end - start).unsqueeze(1)).to(x.dtype)
    weights = inside / inside.sum(dim=1, keepdim=True)
    shape = [*x.shape[:dim], out, length, *x.shape[dim + 1 :]]
    gathered = x.index_select(dim, index.reshape(-1)).reshape(shape)
    view = [1] * len(shape)
    view[dim], view[dim + 1] = out, length
    return (gathered * weights.reshape(view)).sum(dim + 1)


def adaptive_avg_pool2d(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` for ``(B, C, H, W)`` ``x``; while exporting, an
    equivalent gather-and-average form that stays valid for every ``H``, ``W`` and
    ``size`` (growing too: then each bin holds one or two inputs)."""
    if not is_exporting():
        return F.adaptive_avg_pool2d(x, size)
    height, width = size
    return _adaptive_mean_along(_adaptive_mean_along(x, height, 2), width, 3)
