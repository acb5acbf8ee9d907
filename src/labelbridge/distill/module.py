"""The distillation LightningModule: the training module with a frozen teacher, whose
step computes the distillation task's terms."""

from __future__ import annotations

from typing import Any

import torch

from labelbridge.config.distill import DistillConfig, DistillTaskConfig, DistillTeacher
from labelbridge.distill.data import check_target_ontology
from labelbridge.distill.task import DistillationTask
from labelbridge.engine.module import SegmentationModule
from labelbridge.engine.stage import module_kwargs
from labelbridge.errors import CheckpointError, ConfigError
from labelbridge.models import load_model
from labelbridge.models.base import SegmentationModel
from labelbridge.taxonomy import Taxonomy, load_ontology
from labelbridge.taxonomy.priors import allowed_tensor


def build_teacher(ref: DistillTeacher, *, taxonomy: Taxonomy) -> SegmentationModel:
    """The frozen teacher of a model reference (:func:`labelbridge.models.load_model`; a
    ``model`` without ``taxonomy`` predicts the distillation taxonomy).

    Raises:
        CheckpointError: unreadable weights, or a teacher of another taxonomy.
    """
    source = ref.checkpoint or ref.weights
    if ref.checkpoint is not None:
        loaded = load_model(checkpoint=ref.checkpoint, what="teacher (teacher.checkpoint)")
    else:
        # DistillTeacher requires weights with a model: a random teacher teaches nothing
        loaded = load_model(
            spec=ref.model, weights=ref.weights, taxonomy=ref.taxonomy or taxonomy, what="teacher"
        )
    if not loaded.taxonomy.same_train_space(taxonomy):
        raise CheckpointError(
            f"{source}: the teacher predicts taxonomy {loaded.taxonomy.name!r}, the distillation "
            f"uses {taxonomy.name!r}"
        )
    model = loaded.model
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class DistillationModule(SegmentationModule):
    """Trains a student (attribute ``model``) from a frozen teacher: a
    :class:`~labelbridge.engine.module.SegmentationModule` whose :meth:`step_losses` runs
    the :class:`~labelbridge.distill.task.DistillationTask` on a source and a target batch,
    and whose task parameters (feature adapter, discriminator) join the optimiser as the
    parameter group ``"distill"``.

    Args:
        teacher: the teacher reference (:class:`~labelbridge.config.distill.DistillTeacher`
            as a dict).
        task: the task settings (:class:`~labelbridge.config.distill.DistillTaskConfig`
            as a dict).
        target_ontologies: per target dataset (domain), its mapping name/file or ``None``.
        **student: the student's :class:`SegmentationModule` arguments
            (:func:`labelbridge.engine.stage.module_kwargs`); ``augment`` applies to source
            and target batches independently, and teacher and student see the same images.
    """

    def __init__(
        self,
        *,
        teacher: dict[str, Any],
        task: dict[str, Any],
        target_ontologies: list[str | None] | None = None,
        **student: Any,
    ) -> None:
        super().__init__(**student)
        teacher_ref = DistillTeacher.model_validate(teacher)
        frozen = build_teacher(teacher_ref, taxonomy=self.taxonomy)
        self.task = DistillationTask(
            student=self.model,
            teacher=frozen,
            settings=DistillTaskConfig.model_validate(task),
            target_priors=[self._target_priors(name) for name in target_ontologies or []],
            teacher_scale=teacher_ref.input_scale,
        )

    def _target_priors(self, name: str | None) -> torch.Tensor | None:
        if name is None:
            return None
        onto = load_ontology(name)
        check_target_ontology(onto, taxonomy=self.taxonomy, what="target ontology")
        if onto.has_void_option:
            void_rows = [c.name for c in onto.extra.classes if onto.void_allowed[c.id]]
            raise ConfigError(
                f"{onto.origin}: rows {void_rows} have the void option ('ignore' beside "
                "classes), which distillation does not support yet; pseudo-label the "
                "target first (labelbridge pseudo-label) or drop 'ignore' from those rows"
            )
        return allowed_tensor(onto.allowed)

    @property
    def teacher(self) -> SegmentationModel:
        """The frozen teacher (not a submodule: outside ``state_dict`` and DDP)."""
        return self.task.teacher

    @property
    def loss_names(self) -> list[str]:
        """Names of the active loss terms (logged as ``train/<name>``)."""
        return [t.name for t in self.task.terms]

    # ------------------------------------------------------------------ hooks
    def extra_parameter_groups(self) -> list[dict[str, Any]]:
        extra = [p for p in self.task.parameters() if p.requires_grad]
        if not extra:
            return []
        return [{"params": extra, "lr": self.optimizer_args["lr"], "name": "distill"}]

    def step_losses(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], int]:
        """``batch``: ``{"source": (images, labels), "target": (images, labels, domains)}``
        (no ``"target"`` without target datasets)."""
        images, target = self.prepare(*batch["source"])
        kwargs: dict[str, torch.Tensor] = {}
        if batch.get("target") is not None:
            t_images, t_labels, t_domains = batch["target"]
            t_images, t_labels = self.prepare(t_images, t_labels)
            kwargs = {
                "target_images": t_images,
                "target_extra_labels": t_labels,
                "target_domains": t_domains,
            }
        terms = self.task(source_images=images, source_labels=target, **kwargs)
        return {"loss": self.task.total(terms), **terms}, images.shape[0]


def build_distill_module(
    cfg: DistillConfig,
    *,
    taxonomy: Taxonomy,
    val_specs: list[dict[str, Any]],
    target_ontologies: list[str | None],
) -> DistillationModule:
    """The :class:`DistillationModule` of a config."""
    return DistillationModule(
        teacher=cfg.teacher.model_dump(),
        task=cfg.task_settings().model_dump(),
        target_ontologies=target_ontologies,
        **module_kwargs(
            cfg, cfg.student, taxonomy=taxonomy, val_specs=val_specs, weights=cfg.student.weights
        ),
    )
