"""The checkpoints of the paper's reference implementation (UniBwTAS/data-priors,
``train.py``), among them its published Mask2Former teachers.

Their format (a ``torch.save`` of a dict; unpickling needs ``transformers``)::

    {"model_state_dict": Mask2FormerForUniversalSegmentation.state_dict(),
     "model_config": Mask2FormerConfig (the object; id2label without the void class),
     "config": the training config, whose "master_labels" names the label space
               ("master_labels_cityscapes", "master_labels_mapillary", "master_labels_offroad"),
     "optimizer_state_dict", "scheduler_state_dict", "epoch", "global_step", "fitness", ...}

The label space is the built-in taxonomy that ``config["master_labels"]`` names (through
the aliases of the reference's CSV names, as for its mapping files); without it, the one
built-in taxonomy whose train classes are the config's ``id2label`` names. Either way the
``id2label`` names must be that taxonomy's train classes in train-id order, else the file
is refused. :data:`PUBLISHED` lists the teachers the reference publishes (download them
yourself; nothing here downloads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from labelbridge.errors import CheckpointError, TaxonomyError
from labelbridge.taxonomy import Taxonomy, list_taxonomies, load_taxonomy
from labelbridge.taxonomy.formats.reference_csv import reference_taxonomies

#: Keys that mark a reference checkpoint.
REFERENCE_KEYS = frozenset({"model_config", "model_state_dict"})
#: Prefix of labelbridge's Hugging Face wrappers' keys (the wrapped model is ``hf``).
HF_PREFIX = "hf."
#: Taxonomies a reference checkpoint without ``master_labels`` is matched against.
REFERENCE_LABEL_SPACES = ("cityscapes", "mapillary_vistas_v1_2", "offroad", "master20")

#: The reference's published teachers (its README, commit 94e9865): file URL ->
#: (model, label space, mIoU % it reports).
PUBLISHED: dict[str, tuple[str, str, float]] = {
    "https://huggingface.co/antopost/data-priors/resolve/main/23_best.pth": ("M2F Swin-B", "offroad (GOOSE)", 64.4),
    "https://huggingface.co/antopost/data-priors/resolve/main/64_best.pth": ("M2F Swin-L", "offroad (GOOSE)", 67.9),
    "https://huggingface.co/antopost/data-priors/resolve/main/24_best.pth": ("M2F Swin-B", "cityscapes", 75.5),
    "https://huggingface.co/antopost/data-priors/resolve/main/12_best.pth": ("M2F Swin-L", "cityscapes", 78.3),
    "https://huggingface.co/antopost/data-priors/resolve/main/40.pth": ("M2F Swin-L", "mapillary_vistas_v1_2", 52.7),
}  # fmt: skip

#: Swin embedding width -> labelbridge's Mask2Former variant (for the recorded spec).
_SWIN_BY_WIDTH = {96: "swin-t", 128: "swin-b", 192: "swin-l"}


@dataclass(frozen=True)
class ReferenceModel:
    """What a reference checkpoint holds besides its parameters.

    Attributes:
        taxonomy: the label space of its outputs.
        hf_config: the Mask2Former config as plain data (``to_dict()``).
        spec: the labelbridge model spec it corresponds to (``mask2former:swin-b``, ...).
    """

    taxonomy: Taxonomy
    hf_config: dict[str, Any]
    spec: str


def is_reference_checkpoint(obj: Any) -> bool:
    """Whether a loaded file is a reference checkpoint."""
    return isinstance(obj, dict) and REFERENCE_KEYS <= set(obj)


def _names(config: Any, origin: str) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    try:
        ids = sorted(int(k) for k in id2label)
    except (TypeError, ValueError):
        ids = []
    if not ids or ids != list(range(len(ids))):
        raise CheckpointError(f"{origin}: model_config.id2label must map 0..N-1 to class names")
    return [str(id2label[i] if i in id2label else id2label[str(i)]) for i in ids]


def _matches(tax: Taxonomy, names: list[str]) -> list[str]:
    """The names that are not ``tax``'s train class of the same train id."""
    if len(names) != tax.num_classes:
        return names
    wrong = []
    for train_id, name in enumerate(names):
        try:
            if tax.train_id_of(name) != train_id:
                wrong.append(name)
        except TaxonomyError:
            wrong.append(name)
    return wrong


def _taxonomy(obj: dict[str, Any], names: list[str], origin: str) -> Taxonomy:
    train_config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    master = train_config.get("master_labels")
    if master:
        name = reference_taxonomies(f"{master}.csv")[0]
        if name is None:
            raise CheckpointError(
                f"{origin}: config.master_labels {master!r} names no built-in taxonomy"
            )
        tax = load_taxonomy(name)
        wrong = _matches(tax, names)
        if wrong:
            raise CheckpointError(
                f"{origin}: config.master_labels {master!r} is taxonomy {name!r} "
                f"({tax.num_classes} classes), but model_config.id2label has {len(names)} names, "
                f"of which not its classes in train-id order: {wrong[:8]}"
            )
        return tax
    fits = [
        n
        for n in REFERENCE_LABEL_SPACES
        if n in list_taxonomies() and not _matches(load_taxonomy(n), names)
    ]
    if len(fits) != 1:
        raise CheckpointError(
            f"{origin}: no config.master_labels, and model_config.id2label ({len(names)} names: "
            f"{names[:5]}...) is the class list of {'none' if not fits else 'several'} of "
            f"{list(REFERENCE_LABEL_SPACES)}; save the checkpoint with its training config"
        )
    return load_taxonomy(fits[0])


def _spec(config: Any) -> str:
    width = getattr(getattr(config, "backbone_config", None), "embed_dim", None)
    variant = _SWIN_BY_WIDTH.get(int(width)) if isinstance(width, int) else None
    return f"mask2former:{variant}" if variant else "mask2former"


def read_reference_checkpoint(
    obj: dict[str, Any], origin: str
) -> tuple[dict[str, torch.Tensor], ReferenceModel]:
    """The parameters (keys prefixed for labelbridge's wrapper) and the model description
    of a reference checkpoint.

    Raises:
        CheckpointError: not a Mask2Former config, id2label not a built-in label space,
            parameters that are not a dict of tensors.
    """
    config = obj["model_config"]
    if isinstance(config, dict):
        from transformers import Mask2FormerConfig

        config = Mask2FormerConfig.from_dict(config)
    model_type = getattr(config, "model_type", type(config).__name__)
    if model_type != "mask2former":
        raise CheckpointError(
            f"{origin}: a reference checkpoint of model type {model_type!r}; only Mask2Former "
            "(the reference's model) is read"
        )
    state = obj["model_state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{origin}: 'model_state_dict' is not a dict of tensors")
    names = _names(config, origin)
    described = ReferenceModel(_taxonomy(obj, names, origin), config.to_dict(), _spec(config))
    return {HF_PREFIX + k: v for k, v in state.items()}, described
