"""Distillation of a large teacher into a compact student with domain adaptation
(``labelbridge distill``), as an extension of the training engine.

Modules, in data-flow order:

* :mod:`~labelbridge.distill.functional`: pure tensor functions (KL at a temperature,
  restricted to allowed classes; masked CE; the teacher's constrained pseudo-labels);
* :mod:`~labelbridge.distill.discriminator`: AdaptSegNet's output-space discriminator;
* :mod:`~labelbridge.distill.terms`: the loss terms, registered by name (:data:`LOSS_TERMS`);
* :mod:`~labelbridge.distill.task`: student + frozen teacher + terms for one step;
* :mod:`~labelbridge.distill.data`: target datasets and the two-batch data module;
* :mod:`~labelbridge.distill.module`: the LightningModule (training module + hooks);
* :mod:`~labelbridge.distill.run`: :func:`run_distillation`, the stage and its export.
"""

from labelbridge.distill.module import DistillationModule, build_distill_module
from labelbridge.distill.run import DistillResult, export_student, run_distillation
from labelbridge.distill.task import DistillationTask
from labelbridge.distill.terms import LOSS_TERMS, LossTerm

__all__ = [
    "LOSS_TERMS",
    "DistillResult",
    "DistillationModule",
    "DistillationTask",
    "LossTerm",
    "build_distill_module",
    "export_student",
    "run_distillation",
]
