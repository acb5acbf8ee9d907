"""The check every export passes before it is reported: the written file, run by its
runtime, reproduces PyTorch eager on seeded random inputs of several shapes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from labelbridge import __version__
from labelbridge.errors import UserError

#: ``(H, W)`` of the example traced when no fixed size is asked for.
EXAMPLE_SIZE: tuple[int, int] = (256, 512)
#: Batch of the example (sides of 1 would be specialised by the exporter).
EXAMPLE_BATCH: int = 2
#: The second checked input is ``(1, 3, H + 24, W - 40)``: another batch, and sides that
#: are no multiples of 32.
CHECK_OFFSET: tuple[int, int] = (24, -40)
#: An export passes when ``max |exported - eager| <= VERIFY_TOLERANCE * max(1, max |eager|)``.
VERIFY_TOLERANCE: float = 1e-3
#: A folder that reloads the same weights and operations (Hugging Face, Hub): a tighter bound.
HF_TOLERANCE: float = 1e-5
#: An argmax export passes when at least this share of pixels agrees with eager.
MIN_ARGMAX_AGREEMENT: float = 0.999
#: Seed of the random check inputs.
CHECK_SEED: int = 0
#: Hint for missing optional packages.
EXTRA_HINT: str = "install the export extra: pip install 'labelbridge[export]'"


class ExportError(UserError):
    """A model cannot be exported as asked, or the exported file does not reproduce it."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def random_images(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(CHECK_SEED))


def package_versions(*packages: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"labelbridge": __version__, "torch": torch.__version__}
    for name in packages:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


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
        images = random_images(shape)
        with torch.no_grad():
            expected = reference(images)
            try:
                got = runner(images)
            except Exception as exc:  # any runtime's error
                raise ExportError(
                    f"{what}: the exported file fails on an input of shape {list(shape)}: "
                    f"{first_line(exc)}{hint}"
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
