"""Loss terms of multi-level knowledge distillation with domain adaptation, registered by
name.

Domain Adaptive Knowledge Distillation (Kothandaraman et al., arXiv 2011.08007) trains a
compact student on a labelled *source* batch and an unlabelled *target* batch per step:

* ``ce_source`` / ``ce_source_aux``: cross-entropy on the source labels at the final
  output and at the intermediate (auxiliary) head;
* ``kd_final`` / ``kd_aux``: temperature-scaled KL(teacher || student) at the final output
  and at the intermediate depth, times ``T**2`` (Hinton et al.) so that gradients keep
  their scale when ``T`` changes;
* ``feat``: MSE between intermediate feature maps (a learnable 1x1 conv adapter maps the
  student's channels to the teacher's where they differ);
* ``ce_pseudo``: cross-entropy against the teacher's labels on target images -
  ontology-constrained (priors) where the target has ground truth of another taxonomy,
  plain argmax otherwise, optionally dropping pixels below a confidence threshold;
* ``adv`` / ``disc``: AdaptSegNet output-space adversarial loss of the student on target
  outputs, and the discriminator's own source-vs-target loss.

Each term is a small :class:`LossTerm` that reads one :class:`DistillStep` and returns
one scalar. :data:`LOSS_TERMS` maps each name of
:class:`~labelbridge.config.distill.LossWeights` to a builder; :func:`build_terms` builds
the terms with a weight above 0, in that order. A new term is a :class:`LossTerm`
subclass, one builder registered under its name, and its weight in ``LossWeights``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.config.distill import DistillTaskConfig
from labelbridge.distill.discriminator import OutputDiscriminator
from labelbridge.distill.functional import (
    agreement_mask,
    constrained_kl_distillation,
    kl_distillation,
    masked_cross_entropy,
    resize_to,
)
from labelbridge.errors import ConfigError

#: Discriminator targets: 1 = "source output", 0 = "target output".
SOURCE_DOMAIN_LABEL: float = 1.0
TARGET_DOMAIN_LABEL: float = 0.0


@dataclass
class DistillStep:
    """What the loss terms of one step read. Outputs are the dicts of
    :meth:`SegmentationModel.forward_outputs` (``"logits"`` ``(B, C, H, W)`` at input size;
    optionally ``"aux_logits"`` and ``"features"`` ``(B, F, h, w)``).

    Attributes:
        source_student: student outputs on source images.
        source_labels: ``(B, H, W)`` int64 source train ids (``IGNORE_INDEX`` ignored).
        source_teacher: teacher outputs on source images, or ``None``.
        target_student: student outputs on target images, or ``None`` (no target batch).
        target_teacher: teacher outputs on target images, or ``None``.
        target_pseudo: ``(B, H, W)`` int64 teacher pseudo-labels on target images.
        target_allowed: ``(B, C, H, W)`` bool classes allowed per target pixel by its
            dataset's ontology (:func:`target_allowed`), or ``None`` (unconstrained).
    """

    source_student: dict[str, torch.Tensor]
    source_labels: torch.Tensor
    source_teacher: dict[str, torch.Tensor] | None = None
    target_student: dict[str, torch.Tensor] | None = None
    target_teacher: dict[str, torch.Tensor] | None = None
    target_pseudo: torch.Tensor | None = None
    target_allowed: torch.Tensor | None = None

    def pairs(
        self, images: str = "both"
    ) -> list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
        """``(student, teacher)`` output pairs of the batches that have teacher outputs,
        among ``images``: ``"both"``, ``"source"`` or ``"target"``."""
        out = []
        if images != "target" and self.source_teacher is not None:
            out.append((self.source_student, self.source_teacher))
        if (
            images != "source"
            and self.target_student is not None
            and self.target_teacher is not None
        ):
            out.append((self.target_student, self.target_teacher))
        return out


#: Which batches the teacher-matching terms (KD, features) use.
DISTILL_IMAGES: tuple[str, ...] = ("both", "source", "target")


def _check_images(images: str) -> str:
    if images not in DISTILL_IMAGES:
        raise ValueError(f"images must be one of {DISTILL_IMAGES}, got {images!r}")
    return images


def _pixel_weighted_mean(values: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    if not values:
        raise ValueError("no batch to compute the term on")
    total = sum(n for _, n in values)
    return sum(v * (n / total) for v, n in values)  # type: ignore[return-value]


class LossTerm(nn.Module):
    """One named loss term. Subclasses implement :meth:`forward`.

    Args:
        name: key under which the value is returned and logged.
        weight: factor of the term in the total loss (``>= 0``).
        needs_teacher: whether the term reads teacher outputs.
        needs_target: whether the term reads the target batch.
    """

    needs_teacher: bool = False
    needs_target: bool = False

    def __init__(self, *, name: str, weight: float) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"loss weight of {name!r} must be >= 0, got {weight}")
        self.name = name
        self.weight = float(weight)

    def forward(self, step: DistillStep) -> torch.Tensor:  # pragma: no cover - abstract
        """Scalar loss of ``step``."""
        raise NotImplementedError


class SourceCrossEntropy(LossTerm):
    """Cross-entropy of the student on source labels at one output.

    Args:
        output: ``"logits"`` (final) or ``"aux_logits"`` (intermediate head).
    """

    def __init__(self, *, name: str, weight: float, output: str = "logits") -> None:
        super().__init__(name=name, weight=weight)
        self.output = output

    def forward(self, step: DistillStep) -> torch.Tensor:
        return masked_cross_entropy(step.source_student[self.output], step.source_labels)


class LogitDistillation(LossTerm):
    """``T**2``-scaled KL(teacher || student) at one output, over source and target images
    (pixel-weighted mean).

    On target images whose dataset has an ontology (``step.target_allowed``), the
    teacher's distribution is restricted to each pixel's allowed classes
    (:func:`constrained_kl_distillation`) unless ``constrain_target`` is False.

    Args:
        output: ``"logits"`` or ``"aux_logits"`` (the same key on both models).
        temperature: ``T > 0``.
        constrain_target: apply the priors to the target soft labels.
        images: distil on ``"both"`` batches, only ``"source"`` or only ``"target"``.
        source_agree_only: on source images, distil only the pixels whose teacher argmax
            equals the source label (:func:`agreement_mask`).
    """

    needs_teacher = True

    def __init__(
        self,
        *,
        name: str,
        weight: float,
        output: str = "logits",
        temperature: float = 1.0,
        constrain_target: bool = True,
        images: str = "both",
        source_agree_only: bool = False,
    ) -> None:
        super().__init__(name=name, weight=weight)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.output = output
        self.temperature = float(temperature)
        self.constrain_target = constrain_target
        self.source_agree_only = source_agree_only
        self.images = _check_images(images)
        self.needs_target = images == "target"

    def forward(self, step: DistillStep) -> torch.Tensor:
        parts = []
        for student, teacher in step.pairs(self.images):
            s, t = student[self.output], teacher[self.output]
            if (
                self.constrain_target
                and student is step.target_student
                and step.target_allowed is not None
            ):
                value, n = constrained_kl_distillation(
                    s, t, step.target_allowed, temperature=self.temperature
                )
                if n:
                    parts.append((value, n))
                continue
            if self.source_agree_only and student is step.source_student:
                value, n = constrained_kl_distillation(
                    s,
                    t,
                    agreement_mask(t, step.source_labels),
                    temperature=self.temperature,
                )
                if n:
                    parts.append((value, n))
                continue
            parts.append((kl_distillation(s, t, temperature=self.temperature), s[:, 0].numel()))
        if not parts:
            return step.source_student["logits"].sum() * 0.0
        return _pixel_weighted_mean(parts)


class FeatureMatching(LossTerm):
    """MSE between intermediate feature maps, over source and target images.

    The teacher's map is resized to the student's spatial size; a learnable 1x1 conv
    adapter maps the student's channels to the teacher's when they differ (it trains with
    the student and is not part of the exported student).

    Args:
        student_channels: channels of the student's ``"features"``.
        teacher_channels: channels of the teacher's ``"features"``.
        images: match on ``"both"`` batches, only ``"source"`` or only ``"target"``.
    """

    needs_teacher = True

    def __init__(
        self,
        *,
        name: str,
        weight: float,
        student_channels: int,
        teacher_channels: int,
        images: str = "both",
    ) -> None:
        super().__init__(name=name, weight=weight)
        self.images = _check_images(images)
        self.needs_target = images == "target"
        self.adapter: nn.Module | None = None
        if student_channels != teacher_channels:
            self.adapter = nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=False)

    def forward(self, step: DistillStep) -> torch.Tensor:
        parts = []
        for student, teacher in step.pairs(self.images):
            s = student["features"]
            if self.adapter is not None:
                s = self.adapter(s)
            t = resize_to(teacher["features"].float(), s.shape[-2:])
            parts.append((F.mse_loss(s.float(), t), s[:, 0].numel()))
        return _pixel_weighted_mean(parts)


class PseudoLabelCrossEntropy(LossTerm):
    """Cross-entropy of the student's final output on target images against the teacher's
    pseudo-labels (:func:`teacher_pseudo_labels`, computed once per step)."""

    needs_teacher = True
    needs_target = True

    def forward(self, step: DistillStep) -> torch.Tensor:
        if step.target_student is None or step.target_pseudo is None:
            raise ValueError("pseudo-label loss needs a target batch")
        return masked_cross_entropy(step.target_student["logits"], step.target_pseudo)


class AdversarialStudent(LossTerm):
    """AdaptSegNet's adversarial loss of the student: its softmax on target images should
    look like a source output to the discriminator (BCE towards the source label).

    The discriminator's parameters are used detached here, so this term trains the
    student only; :class:`DiscriminatorLoss` trains the discriminator. Both can therefore
    share one optimiser step.
    """

    needs_target = True

    def __init__(self, *, name: str, weight: float, discriminator: OutputDiscriminator) -> None:
        super().__init__(name=name, weight=weight)
        self._disc = [discriminator]  # owned (registered) by DistillationTask

    def forward(self, step: DistillStep) -> torch.Tensor:
        if step.target_student is None:
            raise ValueError("adversarial loss needs a target batch")
        disc = self._disc[0]
        frozen = {k: v.detach() for k, v in disc.named_parameters()}
        probs = torch.softmax(step.target_student["logits"].float(), dim=1)
        score = torch.func.functional_call(disc, frozen, (probs,))
        return F.binary_cross_entropy_with_logits(
            score, torch.full_like(score, SOURCE_DOMAIN_LABEL)
        )


class DiscriminatorLoss(LossTerm):
    """The discriminator's loss: source outputs -> source label, target outputs -> target
    label (student outputs detached, so only the discriminator learns from it)."""

    needs_target = True

    def __init__(self, *, name: str, weight: float, discriminator: OutputDiscriminator) -> None:
        super().__init__(name=name, weight=weight)
        self._disc = [discriminator]

    def forward(self, step: DistillStep) -> torch.Tensor:
        if step.target_student is None:
            raise ValueError("discriminator loss needs a target batch")
        disc = self._disc[0]
        src = disc(torch.softmax(step.source_student["logits"].detach().float(), dim=1))
        tgt = disc(torch.softmax(step.target_student["logits"].detach().float(), dim=1))
        return 0.5 * (
            F.binary_cross_entropy_with_logits(src, torch.full_like(src, SOURCE_DOMAIN_LABEL))
            + F.binary_cross_entropy_with_logits(tgt, torch.full_like(tgt, TARGET_DOMAIN_LABEL))
        )


# ---------------------------------------------------------------------------- registry
@dataclass
class TermContext:
    """What the term builders read: the task settings and the output shapes of both
    models (:func:`~labelbridge.distill.task.probe_outputs`).

    Attributes:
        settings: the distillation task's config part.
        student_outputs: ``{output: shape}`` of the student.
        teacher_outputs: ``{output: shape}`` of the teacher.
        num_classes: classes of both models.
        discriminator: the output-space discriminator, made by the first term that needs
            it (:meth:`shared_discriminator`).
    """

    settings: DistillTaskConfig
    student_outputs: dict[str, tuple[int, ...]]
    teacher_outputs: dict[str, tuple[int, ...]]
    num_classes: int
    discriminator: OutputDiscriminator | None = field(default=None)

    def need(
        self, key: str, term: str, *, models: tuple[str, ...] = ("student", "teacher")
    ) -> None:
        """Check that ``models`` return output ``key`` for ``term``.

        Raises:
            ConfigError: one does not; the message names the term to switch off.
        """
        outputs = {"student": self.student_outputs, "teacher": self.teacher_outputs}
        for who in models:
            if key not in outputs[who]:
                raise ConfigError(
                    f"loss weight {term!r} > 0 needs {key!r} outputs but the {who} model returns "
                    f"only {sorted(outputs[who])}; set {term} to 0"
                )

    def shared_discriminator(self) -> OutputDiscriminator:
        """The one discriminator of the adversarial terms."""
        if self.discriminator is None:
            self.discriminator = OutputDiscriminator(
                num_classes=self.num_classes, width=self.settings.discriminator_width
            )
        return self.discriminator


#: A builder makes the term of its name with the given weight, or ``None`` when the term
#: is not wanted in this configuration.
TermBuilder = Callable[[TermContext, float], LossTerm | None]


def _source_ce(output: str) -> TermBuilder:
    def build(ctx: TermContext, weight: float) -> LossTerm:
        name = "ce_source" if output == "logits" else "ce_source_aux"
        ctx.need(output, name, models=("student",))
        return SourceCrossEntropy(name=name, weight=weight, output=output)

    return build


def _kd(name: str, output: str) -> TermBuilder:
    def build(ctx: TermContext, weight: float) -> LossTerm:
        ctx.need(output, name)
        s = ctx.settings
        return LogitDistillation(
            name=name,
            weight=weight,
            output=output,
            temperature=s.temperature,
            constrain_target=s.kd_priors,
            images=s.distill_on,
            source_agree_only=s.kd_source_agree,
        )

    return build


def _feat(ctx: TermContext, weight: float) -> LossTerm:
    ctx.need("features", "feat")
    return FeatureMatching(
        name="feat",
        weight=weight,
        student_channels=ctx.student_outputs["features"][1],
        teacher_channels=ctx.teacher_outputs["features"][1],
        images=ctx.settings.distill_on,
    )


def _adv(ctx: TermContext, weight: float) -> LossTerm:
    return AdversarialStudent(name="adv", weight=weight, discriminator=ctx.shared_discriminator())


def _disc(ctx: TermContext, weight: float) -> LossTerm | None:
    # the discriminator learns only where the student is trained against it
    if ctx.settings.losses.adv <= 0:
        return None
    return DiscriminatorLoss(name="disc", weight=weight, discriminator=ctx.shared_discriminator())


#: Every loss term by name, in the order they are built, logged and summed.
LOSS_TERMS: dict[str, TermBuilder] = {
    "ce_source": _source_ce("logits"),
    "ce_source_aux": _source_ce("aux_logits"),
    "kd_final": _kd("kd_final", "logits"),
    "kd_aux": _kd("kd_aux", "aux_logits"),
    "feat": _feat,
    "ce_pseudo": lambda ctx, weight: PseudoLabelCrossEntropy(name="ce_pseudo", weight=weight),
    "adv": _adv,
    "disc": _disc,
}


def build_terms(ctx: TermContext) -> list[LossTerm]:
    """The terms of ``ctx.settings.losses`` whose weight is above 0 (disc only with adv).

    Raises:
        ConfigError: a weight names no registered term, a term needs an output a model
            lacks, or every weight is 0.
    """
    weights = ctx.settings.losses.model_dump()
    unknown = sorted(set(weights) - set(LOSS_TERMS))
    if unknown:
        raise ConfigError(f"no loss term is registered as {unknown}; known: {list(LOSS_TERMS)}")
    terms = []
    for name, build in LOSS_TERMS.items():
        weight = float(weights.get(name, 0.0))
        if weight > 0 or (name == "disc" and weights.get("adv", 0) > 0):
            term = build(ctx, weight)
            if term is not None:
                terms.append(term)
    if not terms:
        raise ConfigError("every loss weight is 0: nothing to train")
    return terms
