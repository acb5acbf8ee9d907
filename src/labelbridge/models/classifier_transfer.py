"""Warm-starting a classifier in a new taxonomy through an ontology mapping.

A checkpoint trained on a *source* taxonomy (say Cityscapes, ``K`` classes) can start a
model of another taxonomy (say CamVid-11, ``C`` classes) with more than its encoder and
decoder: the mapping ``extra -> source`` says which source classes each new class may
be, so new class ``c`` with allowed source set ``S_c`` gets the classifier row

    w_c = mean_{k in S_c} w_k,        b_c = mean_{k in S_c} b_k + log |S_c|

i.e. the linear stand-in for ``log sum_{k in S_c} exp(z_k)`` (exact when the member
scores are equal), so ``softmax`` over the new classes starts close to the summed source
probabilities. A new class with an empty set (an ignore row) keeps a zero row with the
mean source bias minus ``log K``, a low score.

Only the class-count-dependent tensors listed by the model's ``classifier_prefixes``
are rewritten, and only when their first dimension is the source's class count (or
``K + 1`` for the published EdgeNets layouts, whose trailing "background" channel is
dropped with a log line); anything else is an error naming the key.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from labelbridge.errors import CheckpointError
from labelbridge.taxonomy.ontology import Ontology

log = logging.getLogger(__name__)


def class_sets(ontology: Ontology) -> list[list[int]]:
    """Per extra train class (in train-id order), the allowed source train ids."""
    src = ontology.source
    return [
        [src.train_id_of(name) for name in ontology.allowed_names(cls.name)]
        for cls in ontology.extra.train_classes
    ]


def map_rows(tensor: torch.Tensor, sets: list[list[int]], *, bias: bool) -> torch.Tensor:
    """Rows of ``tensor`` (``(K, ...)``) combined into ``(len(sets), ...)``.

    Args:
        tensor: a source classifier tensor whose first dimension indexes source classes.
        sets: allowed source rows per new class.
        bias: add ``log |S_c|`` (biases), or not (weights).
    """
    k = tensor.shape[0]
    rows = []
    for members in sets:
        if members:
            row = tensor[members].float().mean(dim=0)
            if bias:
                row = row + math.log(len(members))
        elif bias:
            row = tensor.float().mean(dim=0) - math.log(k)
        else:
            row = torch.zeros_like(tensor[0], dtype=torch.float32)
        rows.append(row)
    return torch.stack(rows).to(tensor.dtype)


def transfer_classifier(
    model: nn.Module,
    state_dict: dict[str, torch.Tensor],
    ontology: Ontology,
    *,
    origin: str,
) -> dict[str, torch.Tensor]:
    """A copy of ``state_dict`` whose classifier tensors are mapped to ``model``'s classes.

    Args:
        model: the target, with ``classifier_prefixes``; its class count must be the
            ontology's extra taxonomy's.
        state_dict: parameters trained on the ontology's source taxonomy.
        ontology: mapping whose *extra* side is the model's taxonomy and whose *source*
            side is the taxonomy ``state_dict`` was trained on.
        origin: file name for messages.

    Returns:
        The state dict, classifier tensors replaced; every other key untouched.

    Raises:
        CheckpointError: the model has no classifier prefixes, a classifier tensor's
            first dimension is not the source's class count, or nothing was mapped.
    """
    prefixes = tuple(getattr(model, "classifier_prefixes", ()))
    if not prefixes:
        raise CheckpointError(
            f"{origin}: {type(model).__name__} does not name its classifier tensors; "
            "the classifier cannot be mapped through an ontology"
        )
    own = model.state_dict()
    k = ontology.source.num_classes
    sets = class_sets(ontology)
    out = dict(state_dict)
    mapped: list[str] = []
    for key, value in state_dict.items():
        if not key.startswith(prefixes) or key not in own:
            continue
        want = tuple(own[key].shape)
        if want[0] != len(sets):
            raise CheckpointError(
                f"{origin}: classifier tensor {key} of the model has {want[0]} rows but the "
                f"ontology {ontology.origin} maps to {len(sets)} classes "
                f"({ontology.extra.name}); is the model built for {ontology.extra.name}?"
            )
        rows = value.shape[0]
        if rows == k + 1:
            log.info("%s: %s has %d rows; the last (background) row is dropped", origin, key, rows)
            value = value[:k]
        elif rows != k:
            raise CheckpointError(
                f"{origin}: classifier tensor {key} has {rows} rows, but {ontology.source.name} "
                f"(the source of {ontology.origin}) has {k} classes"
            )
        if tuple(value.shape[1:]) != want[1:]:
            raise CheckpointError(
                f"{origin}: classifier tensor {key} has shape {tuple(value.shape)}, "
                f"the model's is {want}"
            )
        out[key] = map_rows(value, sets, bias=key.endswith("bias"))
        mapped.append(key)
    if not mapped:
        raise CheckpointError(
            f"{origin}: no classifier tensors under {list(prefixes)} to map through "
            f"{ontology.origin}"
        )
    log.info(
        "%s: classifier mapped from %s (%d classes) to %s (%d classes) through %s: %s",
        origin,
        ontology.source.name,
        k,
        ontology.extra.name,
        len(sets),
        ontology.origin,
        ", ".join(mapped),
    )
    return out
