"""The distillation task: student + frozen teacher + loss terms; one call computes every
term of one step by name (:class:`DistillationTask`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.config.distill import DistillTaskConfig
from labelbridge.distill.discriminator import OutputDiscriminator
from labelbridge.distill.functional import resize_to, target_allowed, teacher_pseudo_labels
from labelbridge.distill.terms import (
    DistillStep,
    FeatureMatching,
    LogitDistillation,
    LossTerm,
    TermContext,
    build_terms,
)
from labelbridge.errors import ConfigError
from labelbridge.models.base import SegmentationModel

#: Side of the blank image used to probe which outputs (and feature widths) a model has.
PROBE_SIZE: int = 64


def probe_outputs(model: SegmentationModel) -> dict[str, tuple[int, ...]]:
    """Shapes of a model's :meth:`forward_outputs` on one blank ``PROBE_SIZE`` image
    (run in eval mode without gradients; the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        device = next(iter(model.parameters())).device
        with torch.no_grad():
            out = model.forward_outputs(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE, device=device))
    finally:
        model.train(was_training)
    return {k: tuple(v.shape) for k, v in out.items()}


class DistillationTask(nn.Module):
    """Student + frozen teacher + loss terms; returns the terms of one step by name.

    Neither model is a registered submodule: the student belongs to whoever trains it
    (the LightningModule's ``model``), and the teacher stays out of ``state_dict()``,
    ``parameters()`` and DDP. The task's own parameters are those of its terms (feature
    adapter, discriminator), which train beside the student.

    Args:
        student: the model being trained.
        teacher: the frozen teacher; set to eval mode and ``requires_grad=False``.
        settings: the task part of the distillation config (loss weights, temperature,
            priors on the KD targets, which batches to distil on, pseudo-label
            threshold, discriminator width); see
            :class:`~labelbridge.config.distill.DistillTaskConfig`.
        target_priors: per target domain, a ``(K, E)`` bool allowed tensor
            (:func:`labelbridge.taxonomy.priors.allowed_tensor`) or ``None`` (plain argmax).
        teacher_scale: factor by which images are resized before the teacher sees them
            (e.g. ``2.0`` for a teacher trained at twice the training resolution).

    Raises:
        ConfigError: a term needs an output (``"aux_logits"``, ``"features"``) that the
            student or teacher does not return, or the class counts differ.

    Example:
        >>> from labelbridge.config.distill import DistillTaskConfig
        >>> from labelbridge.models import TinySegNet
        >>> task = DistillationTask(student=TinySegNet(3, width=4), teacher=TinySegNet(3, width=8),
        ...                         settings=DistillTaskConfig(losses={"feat": 1.0}))
        >>> x, y = torch.rand(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
        >>> sorted(task(source_images=x, source_labels=y, target_images=x))
        ['ce_pseudo', 'ce_source', 'ce_source_aux', 'feat', 'kd_aux', 'kd_final']
    """

    def __init__(
        self,
        *,
        student: SegmentationModel,
        teacher: SegmentationModel,
        settings: DistillTaskConfig,
        target_priors: Sequence[torch.Tensor | None] = (),
        teacher_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self._student = [student]  # plain lists: not submodules
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        self._teacher = [teacher]
        if teacher_scale <= 0:
            raise ValueError(f"teacher_scale must be > 0, got {teacher_scale}")
        self.teacher_scale = float(teacher_scale)
        self.pseudo_threshold = settings.pseudo_threshold
        self.target_priors = list(target_priors)  # plain list: not saved, moved per use
        if student.num_classes != teacher.num_classes:
            raise ConfigError(
                f"student has {student.num_classes} classes but the teacher {teacher.num_classes}"
            )
        ctx = TermContext(
            settings=settings,
            student_outputs=probe_outputs(student),
            teacher_outputs=probe_outputs(teacher),
            num_classes=student.num_classes,
        )
        terms: list[LossTerm] = build_terms(ctx)
        #: The adversarial terms' discriminator (``None`` without them); registered here
        #: once, the terms hold it unregistered.
        self.discriminator: OutputDiscriminator | None = ctx.discriminator
        self.terms = nn.ModuleList(terms)
        # KD targets on target images are restricted to the allowed classes (fixed per run)
        self.constrain_kd = (
            settings.kd_priors
            and any(p is not None for p in self.target_priors)
            and any(isinstance(t, LogitDistillation) for t in terms)
        )

    # ------------------------------------------------------------------ models
    @property
    def student(self) -> SegmentationModel:
        """The student being trained."""
        return self._student[0]

    @property
    def teacher(self) -> SegmentationModel:
        """The frozen teacher (not a submodule)."""
        return self._teacher[0]

    def _teacher_outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher outputs on ``images`` (``(B, 3, H, W)``); with ``teacher_scale != 1``
        the teacher sees the images resized by that factor and ``"logits"`` are resized
        back to ``(H, W)`` (the other outputs are resized by the terms that read them)."""
        teacher = self.teacher
        if teacher.training:
            teacher.eval()
        if teacher.pixel_mean.device != images.device:
            teacher.to(images.device)
        size = images.shape[-2:]
        if self.teacher_scale != 1.0:
            images = F.interpolate(
                images, scale_factor=self.teacher_scale, mode="bilinear", align_corners=False
            )
        with torch.no_grad():
            out = {k: v.detach() for k, v in teacher.forward_outputs(images).items()}
        out["logits"] = resize_to(out["logits"], size)
        return out

    @property
    def needs_teacher(self) -> bool:
        """Whether any term reads teacher outputs."""
        return any(t.needs_teacher for t in self.terms)

    @property
    def needs_source_teacher(self) -> bool:
        """Whether any term reads teacher outputs on source images."""
        return any(
            isinstance(t, (LogitDistillation, FeatureMatching)) and t.images != "target"
            for t in self.terms
        )

    # ------------------------------------------------------------------ step
    def forward(
        self,
        *,
        source_images: torch.Tensor,
        source_labels: torch.Tensor,
        target_images: torch.Tensor | None = None,
        target_extra_labels: torch.Tensor | None = None,
        target_domains: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms of one step (unweighted).

        Args:
            source_images: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
            source_labels: ``(B, H, W)`` int64 train ids.
            target_images: ``(B', 3, H', W')`` RGB in ``[0, 1]``, or ``None``.
            target_extra_labels: ``(B', H', W')`` int64 encoded raw ids of the targets'
                own taxonomies (see :func:`teacher_pseudo_labels`), or ``None``.
            target_domains: ``(B',)`` int64 index into ``target_priors`` per sample.

        Returns:
            ``{term name: scalar}``.
        """
        step = DistillStep(
            source_student=self.student.forward_outputs(source_images), source_labels=source_labels
        )
        if self.needs_source_teacher:
            step.source_teacher = self._teacher_outputs(source_images)
        if target_images is not None:
            step.target_student = self.student.forward_outputs(target_images)
            if self.needs_teacher:
                step.target_teacher = self._teacher_outputs(target_images)
                # one gather of the allowed classes per pixel serves the hard pseudo-labels
                # and the constrained KD target
                allowed = None
                if target_extra_labels is not None:
                    if target_domains is None:
                        raise ValueError("target_extra_labels given without target_domains")
                    allowed = target_allowed(
                        target_extra_labels,
                        target_domains,
                        self.target_priors,
                        self.student.num_classes,
                    )
                step.target_pseudo = teacher_pseudo_labels(
                    step.target_teacher["logits"], allowed=allowed, threshold=self.pseudo_threshold
                )
                if self.constrain_kd and allowed is not None:
                    step.target_allowed = allowed
        losses: dict[str, torch.Tensor] = {}
        for term in self.terms:
            if term.needs_target and step.target_student is None:
                continue
            losses[term.name] = term(step)
        return losses

    def total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """``sum(weight * value)`` over the terms present in ``losses``."""
        weights = {t.name: t.weight for t in self.terms}
        return sum(weights[k] * v for k, v in losses.items())  # type: ignore[return-value]
