"""The one way to get a model from a reference in a config: a checkpoint that carries its
taxonomy (labelbridge, Lightning or a recognised published file), or a model spec with
its weights and the taxonomy of its outputs."""

from __future__ import annotations

from pathlib import Path

from labelbridge.errors import CheckpointError
from labelbridge.models.checkpoint import LoadedModel, load_checkpoint
from labelbridge.models.zoo import create_model
from labelbridge.taxonomy import Taxonomy, load_taxonomy


def load_model(
    *,
    checkpoint: str | Path | None = None,
    spec: str | None = None,
    weights: str | Path | None = None,
    taxonomy: Taxonomy | str | None = None,
    what: str = "model",
) -> LoadedModel:
    """The model (in eval mode, on the CPU) of ``checkpoint``, or ``create_model(spec,
    taxonomy's classes, weights)``.

    Args:
        checkpoint: a checkpoint file or a Hub-style model folder; then ``spec``, ``weights`` and ``taxonomy`` are
            not used.
        spec: model spec (e.g. ``"espnetv2:s=2.0"``), with ``taxonomy``.
        weights: weights of ``spec`` (``None``: the spec's own initialisation).
        taxonomy: the label space of the model's outputs (name, file or taxonomy).
        what: what the model is (``"teacher"``), for messages.

    Raises:
        CheckpointError: a file not found or unreadable, weights that do not fit.
        ValueError: neither a checkpoint nor a spec with a taxonomy.
    """
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.exists():
            raise CheckpointError(f"{path}: {what} checkpoint not found")
        return load_checkpoint(path)
    if spec is None or taxonomy is None:
        raise ValueError(f"{what}: give a checkpoint, or a model spec and its taxonomy")
    tax = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(str(taxonomy))
    path = Path(weights) if weights is not None else None
    if path is not None and not path.is_file():
        raise CheckpointError(f"{path}: {what} weights not found")
    model = create_model(spec, num_classes=tax.num_classes, weights=path)
    return LoadedModel(model=model.eval(), taxonomy=tax, spec=spec, meta={})
