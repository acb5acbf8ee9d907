"""Pseudo-labelling: test-time augmentation, ontology priors, atomic resumable writing.

* :mod:`~labelbridge.models.tta`: :class:`TTAPredictor` (flip + scales, OOM fallbacks);
* :func:`apply_priors` (masked argmax, ignore for empty sets, errors for NaN/inf), from
  :mod:`~labelbridge.taxonomy.priors` (the ontology layer: distillation uses it too);
* :mod:`~labelbridge.files` / :mod:`~labelbridge.pseudo.manifest`: atomic files,
  the resumable manifest;
* :mod:`~labelbridge.pseudo.run`: :func:`run_pseudo_label`, the whole stage;
* :mod:`~labelbridge.pseudo.distributed`: shards (``--shard i/n``, torchrun, srun; from
  :mod:`~labelbridge.sharding`), one lock file per shard (:mod:`~labelbridge.locks`).
"""

from labelbridge.files import OutputWriteError
from labelbridge.models.tta import FallbackEvent, TTAPredictor
from labelbridge.pseudo.distributed import Shard, detect_shard, parse_shard
from labelbridge.pseudo.run import PseudoLabeler, Teacher, load_teacher, run_pseudo_label
from labelbridge.taxonomy.priors import (
    NonFiniteScoresError,
    PriorOutput,
    allowed_tensor,
    apply_priors,
)

__all__ = [
    "FallbackEvent",
    "NonFiniteScoresError",
    "OutputWriteError",
    "PriorOutput",
    "PseudoLabeler",
    "Shard",
    "TTAPredictor",
    "Teacher",
    "allowed_tensor",
    "apply_priors",
    "detect_shard",
    "load_teacher",
    "parse_shard",
    "run_pseudo_label",
]
