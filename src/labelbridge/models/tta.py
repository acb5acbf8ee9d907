"""Test-time augmentation: class probabilities averaged over scales and a horizontal flip.

For every scale ``s`` the image batch is resized (bilinear) to ``round(s * H) x round(s * W)``,
the model predicts logits, the logits are resized back to the native ``H x W``
(bilinear), turned into probabilities (softmax over classes), flipped back where the
input was flipped, and averaged over all passes. ``flip=False`` runs no flipped pass;
``scales=[1.0]`` with ``flip=False`` is a single plain forward pass.

Out-of-memory errors never drop a scale: the scale is retried with one image and one
flip per forward pass, then on the CPU; every fallback is logged and kept in
:attr:`TTAPredictor.events` (and from there in the run's manifest and report).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.constants import DEFAULT_TTA_SCALES
from labelbridge.errors import CheckpointError, ResourceError

log = logging.getLogger(__name__)

#: Fallback levels for a scale after out-of-memory errors, in the order they are tried.
LEVEL_BATCHED, LEVEL_SINGLE, LEVEL_CPU = 0, 1, 2
LEVEL_NAMES = ("batched", "one image and flip per pass", "cpu")


@dataclass
class FallbackEvent:
    """An out-of-memory fallback.

    Attributes:
        scale: the TTA scale that ran out of memory.
        level: name of the level switched to (see :data:`LEVEL_NAMES`).
        error: the first line of the error message.
    """

    scale: float
    level: str
    error: str

    def to_dict(self) -> dict[str, object]:
        return {"scale": self.scale, "level": self.level, "error": self.error}


_OOM_PHRASES = ("out of memory", "can't allocate memory", "not enough memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error: CUDA's, Python's ``MemoryError``, or an
    allocator ``RuntimeError`` (CUDA "out of memory", CPU "can't allocate memory")."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom_type is not None and isinstance(exc, oom_type)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(phrase in text for phrase in _OOM_PHRASES)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """Input size for ``scale``: ``(max(1, round(s*H)), max(1, round(s*W)))``."""
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """Device of the model's first parameter or buffer (``fallback`` if it has none)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return fallback


class TTAPredictor:
    """Averaged class probabilities of a segmentation model under flip and scale TTA.

    Args:
        model: returns ``(N, C, h, w)`` logits for ``(N, 3, h, w)`` RGB in ``[0, 1]``
            (the :class:`~labelbridge.models.SegmentationModel` contract).
        num_classes: expected ``C`` (the source taxonomy's train classes).
        scales: resize factors, default :data:`~labelbridge.constants.DEFAULT_TTA_SCALES`.
        flip: add a horizontally flipped pass per scale.
        batch_scales: run the unflipped and flipped images of one scale in one forward pass.

    Example:
        >>> from labelbridge.models import TinySegNet
        >>> tta = TTAPredictor(TinySegNet(3).eval(), num_classes=3, scales=[1.0], flip=True)
        >>> tta.predict(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        num_classes: int,
        scales: Sequence[float] = DEFAULT_TTA_SCALES,
        flip: bool = True,
        batch_scales: bool = True,
    ) -> None:
        if not scales:
            raise ValueError("TTA needs at least one scale")
        self.model = model
        self.num_classes = int(num_classes)
        self.scales = [float(s) for s in scales]
        self.flip = bool(flip)
        self.batch_scales = bool(batch_scales)
        self.events: list[FallbackEvent] = []
        self._level: dict[float, int] = {}
        self._cpu_model: nn.Module | None = None

    @property
    def passes_per_image(self) -> int:
        """Predictions averaged per image: ``len(scales) * (2 if flip else 1)``."""
        return len(self.scales) * (2 if self.flip else 1)

    # ------------------------------------------------------------------ forward passes
    def _forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        logits = model(x)
        if logits.ndim != 4 or logits.shape[1] != self.num_classes:
            raise CheckpointError(
                f"the teacher returned scores of shape {tuple(logits.shape)}; expected "
                f"(N, {self.num_classes}, H, W) for the source taxonomy's {self.num_classes} classes"
            )
        return logits

    def _passes_at_level(
        self, model: nn.Module, inputs: list[torch.Tensor], level: int
    ) -> list[torch.Tensor]:
        """Logits for each input of ``inputs`` (each ``(B, 3, h, w)``) at a fallback level."""
        if level == LEVEL_BATCHED:
            if self.batch_scales and len(inputs) > 1:
                out = self._forward(model, torch.cat(inputs, dim=0))
                return list(out.split([x.shape[0] for x in inputs], dim=0))
            return [self._forward(model, x) for x in inputs]
        # one image and one flip per pass (CPU level too)
        dev = model_device(model, inputs[0].device)
        results = []
        for x in inputs:
            parts = [
                self._forward(model, x[i : i + 1].to(dev)).to(x.device) for i in range(x.shape[0])
            ]
            results.append(torch.cat(parts, dim=0))
        return results

    def _cpu(self) -> nn.Module:
        if self._cpu_model is None:
            self._cpu_model = copy.deepcopy(self.model).to("cpu")
        return self._cpu_model

    def _logits_for_scale(self, scale: float, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        level = self._level.get(scale, LEVEL_BATCHED)
        while True:
            model = self._cpu() if level == LEVEL_CPU else self.model
            try:
                return self._passes_at_level(model, inputs, level)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                on_cpu = model_device(self.model, inputs[0].device).type == "cpu"
                nxt = level + 1
                if nxt == LEVEL_CPU and on_cpu:
                    nxt = LEVEL_CPU + 1  # already on the CPU: nothing smaller to try
                if nxt > LEVEL_CPU:
                    raise ResourceError(
                        f"TTA scale {scale}: out of memory even with one image per pass"
                        f"{'' if on_cpu else ' on the CPU'}: {exc}"
                    ) from exc
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                message = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                event = FallbackEvent(scale=scale, level=LEVEL_NAMES[nxt], error=message[:200])
                log.warning(
                    "TTA scale %s ran out of memory (%s); retrying with %s",
                    scale,
                    message[:120],
                    event.level,
                )
                self.events.append(event)
                self._level[scale] = level = nxt

    # ------------------------------------------------------------------ public
    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Averaged probabilities.

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, on the model's device.

        Returns:
            ``(B, K, H, W)`` float32 probabilities at the native size; they sum to 1 over
            ``K`` for finite model outputs.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        b, _, h, w = images.shape
        total: torch.Tensor | None = None
        for scale in self.scales:
            size = scaled_size(h, w, scale)
            x = (
                images
                if size == (h, w)
                else F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            )
            inputs = [x, x.flip(-1)] if self.flip else [x]
            logits = self._logits_for_scale(scale, inputs)
            for i, lg in enumerate(logits):
                if lg.shape[-2:] != (h, w):
                    lg = F.interpolate(
                        lg.float(), size=(h, w), mode="bilinear", align_corners=False
                    )
                probs = torch.softmax(lg.float(), dim=1)
                if i == 1:
                    probs = probs.flip(-1)
                total = probs if total is None else total.add_(probs)
        assert total is not None
        return total.div_(self.passes_per_image)
