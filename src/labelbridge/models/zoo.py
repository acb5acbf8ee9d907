"""The model zoo: ``create_model(spec, num_classes, weights)`` over a plain registry.

A *spec* names a model and its options: ``name`` or ``name:option,...`` where an option
is ``key=value`` or one bare variant name::

    tiny                      tiny:width=32
    espnetv2:s=2.0            espnetv2:s=2.0,background=true   (published Cityscapes layout)
    dicenet:s=1.75            dicenet:s=1.75,background=true   (published Cityscapes layout)
    segformer:b0 .. b5        mask2former:swin-t|swin-s|swin-b|swin-l
    upernet:convnext-t        hf:<hub id or local save_pretrained folder>

``hf:`` takes the rest of the spec verbatim (paths may hold ``:`` and ``,``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import torch

from labelbridge.errors import UserError
from labelbridge.models.base import SegmentationModel, TinySegNet
from labelbridge.models.classifier_transfer import transfer_classifier
from labelbridge.models.dicenet import DICENET_WIDTHS, DiCENet
from labelbridge.models.espnetv2 import ENCODER_WIDTHS, ESPNetv2
from labelbridge.models.hf import (
    CONVNEXT_VARIANTS,
    SEGFORMER_VARIANTS,
    SWIN_VARIANTS,
    Mask2FormerSegmentation,
    SegformerSegmentation,
    UperNetSegmentation,
    hf_from_pretrained,
    mask2former_config,
    segformer_config,
    upernet_config,
)
from labelbridge.models.state_dict import load_state_dict_checked, read_parameter_file
from labelbridge.taxonomy.ontology import load_ontology

#: Option key under which a bare (``key``-less) spec option is passed.
VARIANT: str = "variant"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: registry name and string options."""

    name: str
    options: dict[str, str]

    def __str__(self) -> str:
        if not self.options:
            return self.name
        if self.name == "hf":
            return f"hf:{self.options['source']}"
        parts = [v if k == VARIANT else f"{k}={v}" for k, v in self.options.items()]
        return f"{self.name}:{','.join(parts)}"


@dataclass(frozen=True)
class ModelEntry:
    """A registry entry.

    Attributes:
        build: ``(num_classes, options) -> model``; options are validated by the builder.
        summary: one line for ``labelbridge models list``.
        examples: specs listed (with parameter counts) by ``labelbridge models list``.
    """

    build: Callable[[int, dict[str, str]], SegmentationModel]
    summary: str
    examples: tuple[str, ...]


def parse_spec(spec: str) -> ModelSpec:
    """``"espnetv2:s=2.0"`` -> ``ModelSpec("espnetv2", {"s": "2.0"})``.

    Raises:
        UserError: empty spec, unknown model name (the valid names are listed), malformed
            options.
    """
    text = spec.strip()
    name, _, rest = text.partition(":")
    name = name.strip().lower()
    if name not in MODELS:
        raise UserError(
            f"unknown model {name or spec!r} in spec {spec!r}; valid names: {', '.join(MODELS)}"
        )
    if name == "hf":
        if not rest.strip():
            raise UserError(f"model spec {spec!r}: write hf:<hub id or local folder>")
        return ModelSpec(name, {"source": rest.strip()})
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key, value = (key.strip().lower(), value.strip()) if eq else (VARIANT, part.lower())
        if key in options:
            raise UserError(f"model spec {spec!r}: option {key!r} given twice")
        options[key] = value
    return ModelSpec(name, options)


def _check_options(name: str, options: dict[str, str], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(options) - set(allowed))
    if extra:
        shown = ", ".join(allowed) if allowed else "none"
        raise UserError(f"model {name!r}: unknown option(s) {extra}; valid options: {shown}")


def _parse_bool(name: str, key: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise UserError(f"model {name!r}: option {key}={value!r} must be true or false")


def _build_tiny(num_classes: int, options: dict[str, str]) -> SegmentationModel:
    _check_options("tiny", options, ("width",))
    try:
        width = int(options.get("width", "16"))
    except ValueError:
        raise UserError(
            f"model 'tiny': width must be an integer, got {options['width']!r}"
        ) from None
    if width < 1:
        raise UserError(f"model 'tiny': width must be positive, got {width}")
    return TinySegNet(num_classes, width=width)


def _width_and_background(
    name: str, options: dict[str, str], widths: Collection[float], default: str
) -> tuple[float, bool]:
    """``(s, background)`` of an EdgeNets spec (``name:s=<width>,background=<bool>``)."""
    _check_options(name, options, ("s", "background"))
    valid = ", ".join(str(s) for s in widths)
    try:
        s = float(options.get("s", default))
    except ValueError:
        raise UserError(f"model {name!r}: s must be one of {valid}, got {options['s']!r}") from None
    if s not in widths:
        raise UserError(f"model {name!r}: s must be one of {valid}, got {s}")
    return s, _parse_bool(name, "background", options.get("background", "false"))


def _build_espnetv2(num_classes: int, options: dict[str, str]) -> SegmentationModel:
    s, background = _width_and_background("espnetv2", options, ENCODER_WIDTHS, "2.0")
    return ESPNetv2(num_classes, s=s, background_channel=background)


def _build_dicenet(num_classes: int, options: dict[str, str]) -> SegmentationModel:
    s, background = _width_and_background("dicenet", options, DICENET_WIDTHS, "1.75")
    return DiCENet(num_classes, s=s, background_channel=background)


def _variant_of(name: str, options: dict[str, str], valid: dict[str, object], default: str) -> str:
    _check_options(name, options, (VARIANT,))
    variant = options.get(VARIANT, default)
    if variant not in valid:
        raise UserError(f"model {name!r}: unknown variant {variant!r}; valid: {', '.join(valid)}")
    return variant


def _build_segformer(num_classes: int, options: dict[str, str]) -> SegmentationModel:
    variant = _variant_of("segformer", options, SEGFORMER_VARIANTS, "b0")
    return SegformerSegmentation.from_config(segformer_config(variant, num_classes))


def _build_mask2former(num_classes: int, options: dict[str, str]) -> SegmentationModel:
    variant = _variant_of("mask2former", options, SWIN_VARIANTS, "swin-t")
    return Mask2FormerSegmentation.from_config(mask2former_config(variant, num_classes))


def _build_upernet(num_classes: int, options: dict[str, str]) -> SegmentationModel:
    variant = _variant_of("upernet", options, CONVNEXT_VARIANTS, "convnext-t")
    return UperNetSegmentation.from_config(upernet_config(variant, num_classes))


def _build_hf(num_classes: int, options: dict[str, str]) -> SegmentationModel:
    return hf_from_pretrained(options["source"], num_classes)


MODELS: dict[str, ModelEntry] = {
    "tiny": ModelEntry(
        _build_tiny,
        "TinySegNet: a few-thousand-parameter conv net for tests and the demo",
        ("tiny",),
    ),
    "espnetv2": ModelEntry(
        _build_espnetv2,
        "ESPNetv2 (EdgeNets); options s=0.5|1.0|1.25|1.5|2.0, background=true for the published 20-channel head",
        tuple(f"espnetv2:s={s}" for s in (0.5, 1.0, 1.5, 2.0)),
    ),
    "dicenet": ModelEntry(
        _build_dicenet,
        "DiCENet (EdgeNets); options s=0.2..2.4 (1.75 published), background=true for the published 20-channel head",
        ("dicenet:s=1.75",),
    ),
    "segformer": ModelEntry(
        _build_segformer,
        "SegFormer MiT-b0..b5 (transformers, built offline)",
        tuple(f"segformer:{v}" for v in SEGFORMER_VARIANTS),
    ),
    "mask2former": ModelEntry(
        _build_mask2former,
        "Mask2Former with a Swin backbone (transformers, built offline); logits = log semantic scores",
        tuple(f"mask2former:{v}" for v in SWIN_VARIANTS),
    ),
    "upernet": ModelEntry(
        _build_upernet,
        "UperNet with a ConvNeXt backbone (transformers, built offline)",
        tuple(f"upernet:{v}" for v in CONVNEXT_VARIANTS),
    ),
    "hf": ModelEntry(
        _build_hf,
        "hf:<hub id or local folder>: transformers from_pretrained; classifier re-initialised when the class count differs",
        (),
    ),
}


def create_model(
    spec: str,
    num_classes: int,
    weights: str | Path | None = None,
    *,
    reinit_classifier: bool = False,
    classifier_from: str | Path | None = None,
) -> SegmentationModel:
    """Build a zoo model.

    Args:
        spec: model spec (see the module doc).
        num_classes: output classes ``C``.
        weights: optional state dict / labelbridge / Lightning checkpoint file to
            initialise from, loaded strictly.
        reinit_classifier: with ``weights`` for another class count, load everything but
            the classifier (``model.classifier_prefixes``) and log what was
            re-initialised. Every other key must still match.
        classifier_from: with ``weights`` trained on another taxonomy, an ontology
            mapping (built-in name or file) whose *extra* side is this model's taxonomy
            and whose *source* side is the weights' taxonomy: the classifier rows are
            mapped through it (:mod:`labelbridge.models.classifier_transfer`) instead
            of being re-initialised.

    Returns:
        The model in training mode.

    Raises:
        UserError: unknown name (valid names listed) or bad options.
        CheckpointError: unreadable ``weights`` or key mismatch (keys listed).
    """
    if num_classes < 1:
        raise UserError(f"model {spec!r}: num_classes must be positive, got {num_classes}")
    if classifier_from is not None and (weights is None or reinit_classifier):
        raise UserError(
            f"model {spec!r}: classifier_from={str(classifier_from)!r} needs weights and "
            "excludes reinit_classifier"
        )
    parsed = parse_spec(spec)
    model = MODELS[parsed.name].build(num_classes, parsed.options)
    if weights is not None:
        pfile = read_parameter_file(weights)
        state = pfile.state_dict
        if classifier_from is not None:
            state = transfer_classifier(
                model, state, load_ontology(classifier_from), origin=str(weights)
            )
        load_state_dict_checked(
            model, state, origin=str(weights), reinit_classifier=reinit_classifier
        )
    return model


def count_parameters(spec: str, num_classes: int) -> int:
    """Number of parameters of ``spec`` with ``num_classes`` outputs (built on the meta
    device: no memory, no initialisation cost). ``hf:`` specs are loaded for real."""
    parsed = parse_spec(spec)
    if parsed.name == "hf":
        model = create_model(spec, num_classes)
    else:
        with torch.device("meta"):
            model = MODELS[parsed.name].build(num_classes, parsed.options)
    return sum(p.numel() for p in model.parameters())
