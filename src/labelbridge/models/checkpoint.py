"""Self-contained checkpoints: parameters plus the model spec and the taxonomy.

Format (``docs/architecture.md``, "Checkpoints")::

    {"labelbridge": {"format_version": 1, "model_spec": "espnetv2:s=2.0", "num_classes": 19,
                     "taxonomy": Taxonomy.to_dict(), ...},
     "state_dict": {...}}

Lightning checkpoints carry the same ``"labelbridge"`` entry with keys prefixed
``"model."``. Hugging Face models also store ``"hf_config"`` (the ``transformers``
config as plain data), so they are rebuilt without the hub or the original folder, and
``"hf_processor"`` (the image processor config they came with, which sets their input
normalisation) where they had one.
:func:`load_checkpoint` also accepts the published EdgeNets ESPNetv2 Cityscapes files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from labelbridge.errors import CheckpointError, UserError
from labelbridge.files import atomic_output
from labelbridge.models.base import SegmentationModel
from labelbridge.models.hf import HFSegmentationModel, hf_model_from_config_dict
from labelbridge.models.state_dict import (
    META_KEY,
    STATE_KEY,
    ParameterFile,
    load_state_dict_checked,
    published_espnetv2,
    read_parameter_file,
)
from labelbridge.models.zoo import ModelSpec, create_model, parse_spec
from labelbridge.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

#: Version of the ``"labelbridge"`` checkpoint entry written by this code.
FORMAT_VERSION: int = 1
#: Taxonomy of the published EdgeNets Cityscapes models.
PUBLISHED_TAXONOMY: str = "cityscapes"
#: Meta key holding a Hugging Face model's config.
HF_CONFIG_KEY: str = "hf_config"
#: Meta key holding a Hugging Face model's image processor config (absent: ImageNet
#: normalisation).
HF_PROCESSOR_KEY: str = "hf_processor"


@dataclass
class LoadedModel:
    """A model restored from a checkpoint.

    Attributes:
        model: in eval mode, on the CPU (or ``map_location``).
        taxonomy: the label space of the model's outputs (train ids ``0..C-1``).
        spec: model spec.
        meta: the full ``"labelbridge"`` entry (for published files: a synthesised one).
    """

    model: SegmentationModel
    taxonomy: Taxonomy
    spec: str
    meta: dict[str, Any]


def checkpoint_meta(
    spec: str, num_classes: int, taxonomy: Taxonomy, **extra: Any
) -> dict[str, Any]:
    """The ``"labelbridge"`` entry of a checkpoint.

    Args:
        spec: model spec (``create_model`` rebuilds the model from it).
        num_classes: output classes; must equal ``taxonomy.num_classes``.
        taxonomy: the label space of the outputs.
        **extra: further plain-data entries (e.g. training config, dataset names).

    Raises:
        CheckpointError: ``num_classes`` differs from the taxonomy's class count.
    """
    if num_classes != taxonomy.num_classes:
        raise CheckpointError(
            f"model spec {spec!r}: {num_classes} outputs but taxonomy {taxonomy.name!r} has "
            f"{taxonomy.num_classes} classes"
        )
    return {
        "format_version": FORMAT_VERSION,
        "model_spec": spec,
        "num_classes": num_classes,
        "taxonomy": taxonomy.to_dict(),
        **extra,
    }


def model_meta_extra(model: SegmentationModel) -> dict[str, Any]:
    """Entries a model needs beyond its spec to be rebuilt (Hugging Face config and image
    processor config)."""
    if isinstance(model, HFSegmentationModel):
        extra: dict[str, Any] = {HF_CONFIG_KEY: model.hf_config_dict()}
        if model.processor_config is not None:
            extra[HF_PROCESSOR_KEY] = model.processor_config
        return extra
    return {}


def save_checkpoint(
    path: str | Path,
    model: SegmentationModel,
    *,
    spec: str,
    taxonomy: Taxonomy,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a labelbridge checkpoint atomically (:func:`labelbridge.files.atomic_output`).

    Args:
        path: target file; parent folders are created.
        model: the model; its ``state_dict`` is stored (moved to the CPU).
        spec: its model spec.
        taxonomy: label space of its outputs.
        extra: further plain-data meta entries.

    Returns:
        ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = checkpoint_meta(
        spec, model.num_classes, taxonomy, **model_meta_extra(model), **(extra or {})
    )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_output(target) as fh:
        torch.save({META_KEY: meta, STATE_KEY: state}, fh)
    return target


def _meta_field(meta: dict[str, Any], key: str, kind: type, origin: Path) -> Any:
    if key not in meta:
        raise CheckpointError(f"{origin}: checkpoint entry {META_KEY!r} lacks {key!r}")
    value = meta[key]
    if not isinstance(value, kind):
        raise CheckpointError(
            f"{origin}: {META_KEY}.{key} must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def model_from_meta(meta: dict[str, Any], *, origin: Path | str) -> LoadedModel:
    """The model a checkpoint's ``"labelbridge"`` entry describes, with its taxonomy and
    spec, its weights freshly initialised (a checkpoint's or Hub folder's state dict is
    loaded into it next).

    Raises:
        CheckpointError: another format version, a missing or mistyped entry, an invalid
            taxonomy, a spec that cannot be built (naming ``origin``).
    """
    origin = Path(origin)
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{origin}: checkpoint format_version {version!r} not supported (expected {FORMAT_VERSION})"
        )
    spec = _meta_field(meta, "model_spec", str, origin)
    num_classes = _meta_field(meta, "num_classes", int, origin)
    try:
        taxonomy = Taxonomy.from_dict(
            _meta_field(meta, "taxonomy", dict, origin), origin=f"{origin} (taxonomy)"
        )
    except UserError as exc:
        raise CheckpointError(f"{origin}: stored taxonomy is invalid: {exc}") from None
    if taxonomy.num_classes != num_classes:
        raise CheckpointError(
            f"{origin}: num_classes {num_classes} differs from the stored taxonomy's {taxonomy.num_classes} classes"
        )
    if HF_CONFIG_KEY in meta:
        model: SegmentationModel = hf_model_from_config_dict(
            meta[HF_CONFIG_KEY],
            num_classes,
            processor=meta.get(HF_PROCESSOR_KEY),
            origin=str(origin),
        )
    else:
        try:
            model = create_model(spec, num_classes)
        except CheckpointError:
            raise
        except UserError as exc:  # unknown name or options
            raise CheckpointError(
                f"{origin}: stored model spec {spec!r} cannot be built: {exc}"
            ) from None
    return LoadedModel(model=model.eval(), taxonomy=taxonomy, spec=spec, meta=meta)


def _from_meta(pfile: ParameterFile) -> LoadedModel:
    loaded = model_from_meta(pfile.meta or {}, origin=pfile.path)
    load_state_dict_checked(loaded.model, pfile.state_dict, origin=str(pfile.path))
    return loaded


def import_state_dict(
    path: str | Path,
    *,
    spec: str | None = None,
    taxonomy: Taxonomy | str | None = None,
) -> LoadedModel:
    """Load a plain state dict (e.g. a published EdgeNets file) as a labelbridge model.

    Args:
        path: the file.
        spec: model spec; inferred for published ESPNetv2 files when ``None``.
        taxonomy: label space (object or name/path); ``cityscapes`` for published files.

    ESPNetv2 files whose classifier has one channel more than the taxonomy's classes are
    loaded with ``background=true``: the extra last channel (the published models'
    "background") is kept in the parameters and dropped from the outputs.

    Raises:
        CheckpointError: unknown layout without ``spec``, class count mismatch, key mismatch.
    """
    p = Path(path)
    pfile = read_parameter_file(p)
    published = published_espnetv2(pfile.state_dict, origin=str(p))
    if spec is None:
        if published is None:
            raise CheckpointError(
                f"{p}: a plain state dict of unknown layout; give the model spec (e.g. --spec espnetv2:s=2.0)"
            )
        spec = published.spec
    tax = (
        taxonomy
        if isinstance(taxonomy, Taxonomy)
        else load_taxonomy(taxonomy or PUBLISHED_TAXONOMY)
    )
    num_classes = tax.num_classes
    parsed = parse_spec(spec)
    if (
        published is not None
        and parsed.name in ("espnetv2", "dicenet")
        and "background" not in parsed.options
    ):
        if published.head_channels == num_classes + 1:
            spec = str(ModelSpec(parsed.name, {**parsed.options, "background": "true"}))
        elif published.head_channels != num_classes:
            raise CheckpointError(
                f"{p}: classifier has {published.head_channels} channels but taxonomy {tax.name!r} has "
                f"{num_classes} classes"
            )
    model = create_model(spec, num_classes)
    load_state_dict_checked(model, pfile.state_dict, origin=str(p))
    meta = checkpoint_meta(spec, num_classes, tax, imported_from=str(p))
    return LoadedModel(model=model.eval(), taxonomy=tax, spec=spec, meta=meta)


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Restore a model with its taxonomy and spec.

    Accepts labelbridge checkpoints, Lightning checkpoints with the ``"labelbridge"``
    entry, the published EdgeNets ESPNetv2 Cityscapes files (spec and width inferred
    from the keys, taxonomy ``cityscapes``), and the reference implementation's
    Mask2Former checkpoints (its published teachers; taxonomy from their training config,
    see :mod:`labelbridge.models.reference_format`), and Hub-style model folders
    (``config.json`` + ``model.safetensors``, :mod:`labelbridge.models.hub`).

    Raises:
        CheckpointError: missing file, not a checkpoint, unknown spec, key mismatch
            (naming the file and listing the keys).
    """
    p = Path(path)
    if p.is_dir():
        from labelbridge.models.hub import load_hub_folder

        loaded = load_hub_folder(p)
        loaded.model.to(map_location)
        return loaded
    pfile = read_parameter_file(p, map_location=map_location)
    if pfile.reference is not None:
        ref = pfile.reference
        meta = checkpoint_meta(
            ref.spec,
            ref.taxonomy.num_classes,
            ref.taxonomy,
            **{HF_CONFIG_KEY: ref.hf_config, "imported_from": str(p), "format": pfile.kind},
        )
        loaded = _from_meta(replace(pfile, meta=meta))
    elif pfile.meta is not None:
        loaded = _from_meta(pfile)
    elif published_espnetv2(pfile.state_dict, origin=str(p)) is not None:
        loaded = import_state_dict(p)
    else:
        raise CheckpointError(
            f"{p}: not a labelbridge checkpoint (no {META_KEY!r} entry) and not a published EdgeNets "
            "ESPNetv2 file; import plain state dicts with 'labelbridge models import --spec ... --taxonomy ...'"
        )
    loaded.model.to(map_location)
    log.info(
        "%s: %s, %d classes of taxonomy %r",
        p,
        loaded.spec,
        loaded.taxonomy.num_classes,
        loaded.taxonomy.name,
    )
    return loaded
