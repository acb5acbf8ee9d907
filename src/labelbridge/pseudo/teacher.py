"""The teacher of a pseudo-labelling run: loading it onto its device, checking it
against a mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labelbridge.config.pseudo import TeacherConfig
from labelbridge.errors import CheckpointError
from labelbridge.files import sha256_file
from labelbridge.taxonomy import Ontology, Taxonomy


@dataclass
class Teacher:
    """A loaded teacher.

    Attributes:
        model: the network in eval mode on its device (model contract of
            :class:`~labelbridge.models.SegmentationModel`).
        taxonomy: taxonomy of its outputs (``model`` predicts ``taxonomy.num_classes``).
        description: provenance recorded in ``pseudo_labels.yaml``.
    """

    model: nn.Module
    taxonomy: Taxonomy
    description: dict[str, Any] = field(default_factory=dict)


def load_teacher(cfg: TeacherConfig, device: torch.device) -> Teacher:
    """Load the configured teacher onto ``device`` in eval mode.

    Raises:
        CheckpointError: unreadable checkpoint or weights (from the model zoo).
    """
    from labelbridge.models import load_model

    loaded = load_model(
        checkpoint=cfg.checkpoint,
        spec=cfg.model,
        weights=cfg.weights,
        taxonomy=cfg.taxonomy,
        what="teacher",
    )
    model, taxonomy = loaded.model, loaded.taxonomy
    if cfg.checkpoint is not None:
        path = Path(cfg.checkpoint)
        description = {
            "checkpoint": str(path.resolve()),
            "checkpoint_sha256": sha256_file(path),
            "model": loaded.spec,
        }
    else:
        description = {"model": str(cfg.model), "taxonomy": taxonomy.name}
        if cfg.weights:
            weights = Path(cfg.weights)
            description.update(weights=str(weights.resolve()), weights_sha256=sha256_file(weights))
    model = model.to(device).eval()
    return Teacher(model=model, taxonomy=taxonomy, description=description)


def check_teacher(teacher: Teacher, ontology: Ontology) -> None:
    """The teacher must predict exactly the mapping's source taxonomy.

    Raises:
        CheckpointError: different taxonomy (name or class list) or output channels.
    """
    src, tt = ontology.source, teacher.taxonomy
    if not tt.same_train_space(src):
        raise CheckpointError(
            f"{ontology.origin}: the mapping's source taxonomy {src.name!r} ({src.num_classes} classes) "
            f"differs from the teacher's taxonomy {tt.name!r} ({tt.num_classes} classes); the teacher "
            f"must predict the mapping's source classes"
        )
    channels = getattr(teacher.model, "num_classes", None)
    if channels is not None and int(channels) != src.num_classes:
        raise CheckpointError(
            f"the teacher has {channels} output channels but taxonomy {src.name!r} has "
            f"{src.num_classes} classes"
        )
