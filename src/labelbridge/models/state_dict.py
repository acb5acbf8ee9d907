"""Reading parameter files and loading them into models with readable key checks.

Three kinds of file are understood:

* labelbridge checkpoints: ``{"labelbridge": meta, "state_dict": ...}``;
* Lightning checkpoints carrying the same ``"labelbridge"`` entry, whose model keys are
  prefixed ``"model."`` (the LightningModule holds the network as ``model``); other
  keys (losses, teachers) are not model parameters and are left out;
* plain state dicts (``{name: tensor}``), e.g. the published EdgeNets ESPNetv2 and
  DiCENet files, recognised by :func:`published_espnetv2` from their keys and shapes;
* the paper's reference implementation's checkpoints (its published Mask2Former
  teachers), ``{"model_config", "model_state_dict", ...}``
  (:mod:`labelbridge.models.reference_format`).
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labelbridge.errors import CheckpointError
from labelbridge.models.dicenet import DICENET_CLASSIFIER_PREFIX, DICENET_WIDTHS
from labelbridge.models.espnetv2 import CLASSIFIER_PREFIX, ENCODER_WIDTHS
from labelbridge.models.reference_format import (
    ReferenceModel,
    is_reference_checkpoint,
    read_reference_checkpoint,
)

log = logging.getLogger(__name__)

#: Key of the labelbridge metadata entry in checkpoints.
META_KEY: str = "labelbridge"
#: Key of the parameters in labelbridge and Lightning checkpoints.
STATE_KEY: str = "state_dict"
#: Prefix of the model's keys in Lightning checkpoints.
LIGHTNING_MODEL_PREFIX: str = "model."
#: Keys that mark a Lightning checkpoint.
LIGHTNING_MARKERS: tuple[str, ...] = ("pytorch-lightning_version", "global_step")
#: Keys listed per category in mismatch messages before "... and N more".
MAX_LISTED_KEYS: int = 12

#: Keys that identify a published EdgeNets ESPNetv2 segmentation file.
_ESPNET_MARKERS = (
    "base_net.level1.conv.weight",
    "base_net.level4_0.act.weight",
    CLASSIFIER_PREFIX + "weight",
)
#: A key that identifies a published EdgeNets DiCENet segmentation file.
_DICENET_MARKER = "base_net.level1.cbr.0.weight"
#: DiCENet keys whose shapes give the encoder widths (level1, level3, level4): the first
#: (output) dimension of level1's conv, the input dimension of the two projections.
_DICENET_WIDTH_KEYS = (
    ("base_net.level1.cbr.0.weight", 0),
    ("proj_enc_32x32.wt_layer.1.weight", 1),
    ("eff_pool_16x16.projection_layer.cbr.0.weight", 1),
)


@dataclass
class ParameterFile:
    """Contents of a parameter file.

    Attributes:
        state_dict: model parameters and buffers (Lightning prefix removed).
        meta: the ``"labelbridge"`` entry, or ``None`` for plain state dicts.
        kind: ``"labelbridge"``, ``"lightning"``, ``"plain"`` or ``"data-priors"`` (a
            reference checkpoint).
        path: the file.
        reference: for a reference checkpoint, its taxonomy and model config.
    """

    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] | None
    kind: str
    path: Path
    reference: ReferenceModel | None = None


def torch_load(path: str | Path, *, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` with readable errors.

    Tries ``weights_only=True`` first; files holding other Python objects (Lightning
    hyper-parameters) are then unpickled fully, which is logged (load only trusted files).

    Raises:
        CheckpointError: missing file or not a torch file (named).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint file not found")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        log.info(
            "%s: holds non-tensor Python objects; unpickling fully (load only files you trust)", p
        )
    except Exception as exc:  # noqa: BLE001 - truncation gives struct.error, text IndexError, ...
        raise CheckpointError(
            f"{p}: not a PyTorch checkpoint or truncated: {type(exc).__name__}: {exc}"
        ) from None
    try:
        return torch.load(p, map_location=map_location, weights_only=False)
    except Exception as exc:  # anything unpickling may raise
        raise CheckpointError(f"{p}: not a PyTorch checkpoint or truncated: {exc}") from None


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def read_parameter_file(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> ParameterFile:
    """Read a labelbridge, Lightning or plain state-dict file.

    Raises:
        CheckpointError: missing, unreadable, or holding no state dict (named).
    """
    p = Path(path)
    obj = torch_load(p, map_location=map_location)
    if isinstance(obj, dict) and STATE_KEY in obj:
        state = obj[STATE_KEY]
        meta = obj.get(META_KEY)
        if not isinstance(state, dict):
            raise CheckpointError(f"{p}: {STATE_KEY!r} is not a dict of tensors")
        if meta is not None and not isinstance(meta, dict):
            raise CheckpointError(f"{p}: {META_KEY!r} entry is not a mapping")
        if any(k in obj for k in LIGHTNING_MARKERS):
            model_keys = {
                k[len(LIGHTNING_MODEL_PREFIX) :]: v
                for k, v in state.items()
                if k.startswith(LIGHTNING_MODEL_PREFIX)
            }
            if not model_keys:
                raise CheckpointError(
                    f"{p}: Lightning checkpoint without {LIGHTNING_MODEL_PREFIX!r} keys; "
                    "its LightningModule must hold the network as attribute 'model'"
                )
            dropped = len(state) - len(model_keys)
            if dropped:
                log.debug("%s: %d non-model keys of the Lightning checkpoint left out", p, dropped)
            return ParameterFile(model_keys, meta, "lightning", p)
        return ParameterFile(dict(state), meta, "labelbridge" if meta is not None else "plain", p)
    if _is_state_dict(obj):
        return ParameterFile(dict(obj), None, "plain", p)
    if is_reference_checkpoint(obj):
        state, reference = read_reference_checkpoint(obj, str(p))
        return ParameterFile(state, None, "data-priors", p, reference)
    what = (
        f"a dict with keys {sorted(map(str, obj))[:8]}"
        if isinstance(obj, dict)
        else type(obj).__name__
    )
    raise CheckpointError(
        f"{p}: not a checkpoint: expected a state dict or a dict with {STATE_KEY!r}, got {what}"
    )


@dataclass
class PublishedModel:
    """What a published EdgeNets file holds, inferred from its keys and shapes.

    Attributes:
        spec: model spec for :func:`~labelbridge.models.zoo.create_model`.
        head_channels: output channels of the classifier in the file.
    """

    spec: str
    head_channels: int


def _published_dicenet(state_dict: dict[str, torch.Tensor], *, origin: str) -> PublishedModel:
    """The spec of a published EdgeNets DiCENet segmentation state dict (width ``s`` from
    the encoder widths, class count from the classifier)."""
    missing = [k for k, _ in _DICENET_WIDTH_KEYS if k not in state_dict]
    classifier = DICENET_CLASSIFIER_PREFIX + "weight"
    if classifier not in state_dict:
        missing.append(classifier)
    if missing:
        raise CheckpointError(f"{origin}: DiCENet file without the keys {', '.join(missing)}")
    widths = tuple(int(state_dict[k].shape[dim]) for k, dim in _DICENET_WIDTH_KEYS)
    matches = [s for s, w in DICENET_WIDTHS.items() if w == widths]
    if not matches:
        raise CheckpointError(f"{origin}: DiCENet encoder widths {widths} match no known width s")
    head = int(state_dict[classifier].shape[0])
    return PublishedModel(spec=f"dicenet:s={matches[0]}", head_channels=head)


def published_espnetv2(
    state_dict: dict[str, torch.Tensor], *, origin: str = "<state dict>"
) -> PublishedModel | None:
    """Recognise a published EdgeNets ESPNetv2 or DiCENet segmentation state dict.

    The width ``s`` is read off the encoder widths (ESPNetv2: level1..level4 PReLU sizes;
    DiCENet: level1, level3, level4 widths), the class count off the classifier. Returns
    ``None`` for other state dicts.

    Raises:
        CheckpointError: EdgeNets keys with widths of no known ``s``.
    """
    if _DICENET_MARKER in state_dict:
        return _published_dicenet(state_dict, origin=origin)
    if not all(k in state_dict for k in _ESPNET_MARKERS):
        return None
    widths = (
        state_dict["base_net.level1.conv.weight"].shape[0],
        state_dict["base_net.level2_0.act.weight"].shape[0],
        state_dict["base_net.level3_0.act.weight"].shape[0],
        state_dict["base_net.level4_0.act.weight"].shape[0],
    )
    matches = [s for s, w in ENCODER_WIDTHS.items() if w == widths]
    if not matches:
        raise CheckpointError(f"{origin}: ESPNetv2 encoder widths {widths} match no known width s")
    head = int(state_dict[CLASSIFIER_PREFIX + "weight"].shape[0])
    return PublishedModel(spec=f"espnetv2:s={matches[0]}", head_channels=head)


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    more = len(keys) - MAX_LISTED_KEYS
    return shown + (f" ... and {more} more" if more > 0 else "")


def load_state_dict_checked(
    model: nn.Module,
    state_dict: dict[str, torch.Tensor],
    *,
    origin: str,
    reinit_classifier: bool = False,
) -> list[str]:
    """Load ``state_dict`` into ``model`` strictly, with a readable error.

    Args:
        model: the target; its ``classifier_prefixes`` name the class-count-dependent keys.
        state_dict: parameters and buffers.
        origin: file name for messages.
        reinit_classifier: keys under ``model.classifier_prefixes`` whose shape differs
            (or that are absent / extra) are left at their fresh initialisation instead
            of failing; every other key must still match. What was re-initialised is
            logged.

    Returns:
        The re-initialised keys (empty when everything loaded).

    Raises:
        CheckpointError: naming ``origin`` and listing missing, unexpected and
            shape-mismatched keys.
    """
    own = model.state_dict()
    prefixes = tuple(getattr(model, "classifier_prefixes", ()))

    def is_classifier(key: str) -> bool:
        """Whether ``key`` may be re-initialised instead of loaded."""
        return reinit_classifier and bool(prefixes) and key.startswith(prefixes)

    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)
    ]
    reinit = [k for k in missing + mismatched if is_classifier(k)]
    bad_missing = [k for k in missing if not is_classifier(k)]
    bad_unexpected = [k for k in unexpected if not is_classifier(k)]
    bad_shapes = [k for k in mismatched if not is_classifier(k)]
    if bad_missing or bad_unexpected or bad_shapes:
        parts = [f"{origin}: parameters do not match the model {type(model).__name__}"]
        if bad_missing:
            parts.append(f"missing keys ({len(bad_missing)}): {_listed(bad_missing)}")
        if bad_unexpected:
            parts.append(f"unexpected keys ({len(bad_unexpected)}): {_listed(bad_unexpected)}")
        if bad_shapes:
            shapes = [
                f"{k} file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                for k in bad_shapes
            ]
            parts.append(f"shape mismatches ({len(bad_shapes)}): {_listed(shapes)}")
        if (
            not reinit_classifier
            and prefixes
            and all(k.startswith(prefixes) for k in bad_missing + bad_shapes + bad_unexpected)
        ):
            parts.append(
                "only the classifier differs: pass reinit_classifier=True to re-initialise it"
            )
        raise CheckpointError("; ".join(parts))
    loadable = {k: v for k, v in state_dict.items() if k in own and k not in reinit}
    result = model.load_state_dict(loadable, strict=not reinit)
    if reinit:
        log.info(
            "%s: re-initialised %d classifier tensors: %s", origin, len(reinit), ", ".join(reinit)
        )
        if set(result.missing_keys) != set(reinit):
            raise CheckpointError(f"{origin}: unexpected missing keys {result.missing_keys}")
    return reinit
