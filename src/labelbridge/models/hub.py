"""Hub-style model folders for every labelbridge model (ESPNetv2, DiCENet, TinySegNet and
the Hugging Face ones alike), through ``huggingface_hub``'s ``PyTorchModelHubMixin``.

A folder holds what the mixin's ``save_pretrained`` writes::

    config.json         {"labelbridge": {"format_version": 1, "model_spec": "espnetv2:s=0.5",
                          "num_classes": 19, "taxonomy": {...}, ...}}
    model.safetensors   the module's parameters and buffers (the model is its attribute
                        ``model``: keys ``model.<name>``)
    README.md           the mixin's model card (library labelbridge)

It is pushed with ``HubSegmentationModel.push_to_hub`` or ``huggingface_hub.upload_folder``
and read with ``HubSegmentationModel.from_pretrained(folder or repo id)`` or, as any
checkpoint, ``load_checkpoint(folder)`` / ``model.checkpoint: folder`` in a config. The
``"labelbridge"`` entry is a checkpoint's (:func:`~labelbridge.models.checkpoint.checkpoint_meta`):
the model is rebuilt from its spec (and Hugging Face config), and its outputs carry the
taxonomy. Weights are loaded strictly (the mixin's own default is not strict).

Example::

    hub = HubSegmentationModel.from_loaded(load_model(checkpoint="student/final.ckpt"))
    hub.save_pretrained("export/student_hub")
    again = HubSegmentationModel.from_pretrained("export/student_hub")
    again(images)  # (B, C, H, W) logits, C = again.taxonomy.num_classes
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from torch import nn

from labelbridge.errors import CheckpointError
from labelbridge.models.checkpoint import (
    LoadedModel,
    checkpoint_meta,
    model_from_meta,
    model_meta_extra,
)
from labelbridge.models.state_dict import META_KEY, load_state_dict_checked

log = logging.getLogger(__name__)

#: The config file of a Hub folder (the mixin's name).
HUB_CONFIG_FILE: str = "config.json"
#: The weights file of a Hub folder (the mixin's name).
HUB_WEIGHTS_FILE: str = "model.safetensors"
#: The config entry holding the checkpoint meta: a checkpoint's meta key, and the name of
#: :class:`HubSegmentationModel`'s constructor argument (the mixin passes entries by name).
HUB_CONFIG_KEY: str = META_KEY


class HubSegmentationModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="labelbridge",
    tags=["semantic-segmentation", "labelbridge"],
    pipeline_tag="image-segmentation",
):
    """A labelbridge model as a ``PyTorchModelHubMixin`` module.

    Args:
        labelbridge: the checkpoint meta (``format_version``, ``model_spec``,
            ``num_classes``, ``taxonomy`` and, for Hugging Face models, their config); the
            model is built from it with fresh weights.

    Attributes:
        model: the :class:`~labelbridge.models.base.SegmentationModel`.
        taxonomy: the label space of its outputs.
        spec: its model spec.
    """

    def __init__(self, labelbridge: dict[str, Any]) -> None:
        super().__init__()
        built = model_from_meta(labelbridge, origin=f"{HUB_CONFIG_FILE} entry {HUB_CONFIG_KEY!r}")
        self.model = built.model
        self.taxonomy = built.taxonomy
        self.spec = built.spec
        self.meta = labelbridge

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ``(B, C, H, W)`` logits."""
        return self.model(images)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> HubSegmentationModel:
        """The Hub module of a loaded model (its weights copied)."""
        model = loaded.model
        meta = checkpoint_meta(
            loaded.spec, model.num_classes, loaded.taxonomy, **model_meta_extra(model)
        )
        hub = cls(labelbridge=json.loads(json.dumps(meta)))
        load_state_dict_checked(hub.model, model.state_dict(), origin=f"{loaded.spec} (in memory)")
        return hub.eval()

    def loaded(self) -> LoadedModel:
        """The wrapped model with its taxonomy, spec and meta."""
        return LoadedModel(model=self.model, taxonomy=self.taxonomy, spec=self.spec, meta=self.meta)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> HubSegmentationModel:
        """(Called by ``from_pretrained`` with the config's entries.) Build the model and load
        its weights strictly from a local folder or a Hub repository."""
        import safetensors.torch

        if not strict:
            raise CheckpointError(f"{model_id}: labelbridge Hub models load their weights strictly")
        if HUB_CONFIG_KEY not in model_kwargs:
            raise CheckpointError(
                f"{model_id}: {HUB_CONFIG_FILE} has no {HUB_CONFIG_KEY!r} entry (not a "
                "labelbridge Hub folder)"
            )
        hub = cls(**model_kwargs)
        if Path(model_id).is_dir():
            weights = Path(model_id) / HUB_WEIGHTS_FILE
            if not weights.is_file():
                raise CheckpointError(f"{weights}: weights file not found")
        else:
            weights = Path(
                hf_hub_download(
                    repo_id=model_id,
                    filename=HUB_WEIGHTS_FILE,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    token=token,
                    local_files_only=local_files_only,
                )
            )
        state = safetensors.torch.load_file(str(weights), device=str(map_location))
        load_state_dict_checked(hub, state, origin=str(weights))
        return hub.eval()


def load_hub_folder(path: str | Path) -> LoadedModel:
    """The model of a local Hub folder, as :func:`~labelbridge.models.checkpoint.load_checkpoint`
    returns checkpoints.

    Raises:
        CheckpointError: no ``config.json``, a ``config.json`` of another library (a
            transformers folder is named as such, with the spec that reads it), an
            unreadable one, or weights that do not fit.
    """
    folder = Path(path)
    config = folder / HUB_CONFIG_FILE
    if not config.is_file():
        raise CheckpointError(
            f"{folder}: a folder without {HUB_CONFIG_FILE}: not a labelbridge Hub model folder"
        )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{config}: cannot read: {exc}") from None
    if not isinstance(data, dict) or HUB_CONFIG_KEY not in data:
        hint = (
            f"; a transformers model folder is read by the model spec 'hf:{folder}' with a taxonomy"
            if isinstance(data, dict) and "model_type" in data
            else ""
        )
        raise CheckpointError(
            f"{config}: no {HUB_CONFIG_KEY!r} entry: not a labelbridge Hub model folder{hint}"
        )
    hub = HubSegmentationModel.from_pretrained(folder, local_files_only=True)
    log.info("%s: %s, Hub folder, taxonomy %r", folder, hub.spec, hub.taxonomy.name)
    return hub.loaded()
