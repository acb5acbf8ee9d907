"""Loss terms of multi-level knowledge distillation with domain adaptation.

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

Each term is a small :class:`LossTerm` (timm ``task`` style) that reads one
:class:`DistillStep` and returns one scalar tensor; :class:`DistillationTask` runs the
student and the frozen teacher and returns ``{name: value}``; the training step sums
``weight * value``. The teacher is never a registered submodule: it stays out of
``state_dict()``, ``parameters()`` and DDP.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labelbridge.constants import IGNORE_INDEX
from labelbridge.engine.discriminator import OutputDiscriminator
from labelbridge.errors import ConfigError
from labelbridge.models.base import SegmentationModel
from labelbridge.taxonomy.priors import apply_priors

log = logging.getLogger(__name__)

#: Side of the blank image used to probe which outputs (and feature widths) a model has.
PROBE_SIZE: int = 64
#: Discriminator targets: 1 = "source output", 0 = "target output".
SOURCE_DOMAIN_LABEL: float = 1.0
TARGET_DOMAIN_LABEL: float = 0.0
#: Target label maps carry ``raw id + TARGET_LABEL_OFFSET`` so that the augmentation's
#: padding (``IGNORE_INDEX``, always below the offset) stays distinguishable from a raw
#: id that happens to equal ``IGNORE_INDEX``.
TARGET_LABEL_OFFSET: int = 256


# ---------------------------------------------------------------------------- functions
def resize_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, h, w)`` to ``size`` ``(H, W)`` (no-op when equal)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def kl_distillation(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float
) -> torch.Tensor:
    """``T**2 * KL(softmax(t / T) || softmax(s / T))``, summed over classes, mean over pixels.

    Args:
        student_logits: ``(B, C, h, w)`` student scores (any real values).
        teacher_logits: ``(B, C, H, W)`` teacher scores; resized to the student's size
            when the sizes differ.
        temperature: ``T > 0``; higher values soften both distributions.

    Returns:
        Scalar ``>= 0``; zero exactly when the two softened distributions agree.
    """
    if student_logits.shape[1] != teacher_logits.shape[1]:
        raise ValueError(
            f"student has {student_logits.shape[1]} classes, teacher {teacher_logits.shape[1]}"
        )
    teacher_logits = resize_to(teacher_logits, student_logits.shape[-2:])
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, log_target=True, reduction="none").sum(dim=1)
    return kl.mean() * temperature**2


def constrained_kl_distillation(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    allowed: torch.Tensor,
    *,
    temperature: float,
) -> tuple[torch.Tensor, int]:
    """KL distillation towards the teacher's distribution *restricted to each pixel's
    allowed classes* (the priors applied to soft targets).

    The target is ``q~(c) = q(c) [c allowed] / sum_{c' allowed} q(c')`` with
    ``q = softmax(teacher / T)``: the ontology says the pixel cannot be any other class,
    so the teacher's mass there is dropped instead of being taught. Its argmax is the
    pixel's prior-corrected pseudo-label (:func:`teacher_pseudo_labels`). Pixels with no
    allowed class (ignore rows, augmentation padding) are left out.

    Args:
        student_logits: ``(B, C, h, w)`` student scores (resized to ``allowed``'s size).
        teacher_logits: ``(B, C, H', W')`` teacher scores (resized likewise).
        allowed: ``(B, C, H, W)`` bool, see :func:`target_allowed`.
        temperature: ``T > 0``.

    Returns:
        ``(T**2 * mean KL over the kept pixels, number of kept pixels)``; the value is 0
        (with a graph) when no pixel is kept.
    """
    if (
        student_logits.shape[1] != teacher_logits.shape[1]
        or allowed.shape[1] != student_logits.shape[1]
    ):
        raise ValueError(
            f"class counts differ: student {student_logits.shape[1]}, teacher "
            f"{teacher_logits.shape[1]}, allowed {allowed.shape[1]}"
        )
    size = allowed.shape[-2:]
    s = resize_to(student_logits.float(), size) / temperature
    t = resize_to(teacher_logits.float(), size) / temperature
    kept = allowed.any(dim=1)  # (B, H, W)
    n = int(kept.sum())
    if n == 0:
        return student_logits.sum() * 0.0, 0
    # pixels without an allowed class get a full mask so that no row is all -inf
    mask = allowed | ~kept.unsqueeze(1)
    log_q = F.log_softmax(t.masked_fill(~mask, float("-inf")), dim=1)
    log_p = F.log_softmax(s, dim=1)
    q = log_q.exp()
    # q == 0 outside the allowed set: those terms are 0 (not 0 * -inf)
    kl = (q * (log_q.masked_fill(~mask, 0.0) - log_p)).sum(dim=1)
    return (kl * kept).sum() / n * temperature**2, n


def agreement_mask(teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pixels where the teacher's argmax equals the label, as an "allowed" mask.

    Where a source label (ground truth, or a prior-corrected pseudo-label) and the teacher
    disagree, the teacher's distribution teaches the error the label corrects; KD on the
    agreeing pixels only keeps the teacher's soft knowledge without that conflict.

    Args:
        teacher_logits: ``(B, C, h, w)`` (resized to the labels' size).
        labels: ``(B, H, W)`` int64 train ids or ``IGNORE_INDEX``.

    Returns:
        ``(B, C, H, W)`` bool: every class at agreeing pixels, none elsewhere (ignored
        pixels included), for :func:`constrained_kl_distillation`.
    """
    t = resize_to(teacher_logits, labels.shape[-2:])
    agree = (t.argmax(dim=1) == labels) & (labels != IGNORE_INDEX)
    return agree.unsqueeze(1).expand(-1, t.shape[1], -1, -1)


def target_allowed(
    extra_labels: torch.Tensor,
    domains: torch.Tensor,
    priors: Sequence[torch.Tensor | None],
    num_classes: int,
) -> torch.Tensor:
    """Per pixel, the classes its target ground truth allows.

    Args:
        extra_labels: ``(B, H, W)`` int64 encoded extra raw ids (``raw +
            TARGET_LABEL_OFFSET``; lower values mark padding), see
            :func:`teacher_pseudo_labels`.
        domains: ``(B,)`` int64 index into ``priors``.
        priors: per domain a ``(K, E)`` bool allowed tensor, or ``None`` (every class).
        num_classes: ``K``.

    Returns:
        ``(B, K, H, W)`` bool; all False at padding pixels and ignore rows.
    """
    b, h, w = extra_labels.shape
    out = torch.ones((b, num_classes, h, w), dtype=torch.bool, device=extra_labels.device)
    raw = (extra_labels - TARGET_LABEL_OFFSET).clamp_min(0)
    for d in torch.unique(domains).tolist():
        allowed_t = priors[d] if d < len(priors) else None
        if allowed_t is None:
            continue
        idx = (domains == d).nonzero().flatten()
        allowed_t = allowed_t.to(extra_labels.device)
        gt = raw[idx].clamp_max(allowed_t.shape[1] - 1)
        out[idx] = allowed_t[:, gt].movedim(0, 1)
    return out & (extra_labels >= TARGET_LABEL_OFFSET).unsqueeze(1)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy, ``IGNORE_INDEX`` ignored; zero (with a graph) when every
    pixel is ignored, instead of PyTorch's NaN.

    Args:
        logits: ``(B, C, H, W)``.
        target: ``(B, H, W)`` int64 train ids in ``[0, C)`` or ``IGNORE_INDEX``.
    """
    if logits.shape[-2:] != target.shape[-2:]:
        logits = resize_to(logits, target.shape[-2:])
    if not bool((target != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX)


def teacher_pseudo_labels(
    teacher_logits: torch.Tensor,
    *,
    allowed: torch.Tensor | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Hard labels from the teacher, constrained by another taxonomy's ground truth.

    ``allowed`` is :func:`target_allowed` of the target batch: for a sample of a domain
    with an ontology, ``p~(c) = p(c) * allowed[c]`` (the classes the pixel's extra ground
    truth allows), the label is ``argmax p~``, and a pixel whose allowed set is empty
    becomes ``IGNORE_INDEX`` (never class 0); this is
    :func:`labelbridge.taxonomy.priors.apply_priors`. Samples of a domain without an
    ontology get the plain argmax; padding pixels (all False) become ``IGNORE_INDEX``.
    With ``threshold``, pixels whose confidence renormalised over the allowed classes,
    ``max p~ / sum p~``, is below it become ``IGNORE_INDEX``.

    Args:
        teacher_logits: ``(B, K, H, W)`` teacher scores.
        allowed: ``(B, K, H, W)`` bool, or ``None`` (plain argmax everywhere).
        threshold: confidence in ``[0, 1]``, or ``None``.

    Returns:
        ``(B, H, W)`` int64 in ``[0, K)`` or ``IGNORE_INDEX``.
    """
    probs = torch.softmax(teacher_logits.float(), dim=1)
    out = apply_priors(probs, None, None, mask=allowed, what="teacher scores on target images")
    labels = out.labels
    if threshold is not None:
        total = out.masked.sum(dim=1).clamp_min(torch.finfo(out.masked.dtype).tiny)
        labels = labels.masked_fill(out.confidence / total < threshold, IGNORE_INDEX)
    return labels


# ---------------------------------------------------------------------------- one step
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


# ---------------------------------------------------------------------------- terms
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


# ---------------------------------------------------------------------------- the task
@dataclass
class DistillWeights:
    """Weights of the loss terms; a term with weight 0 is not built at all.

    Attributes:
        ce_source: CE on source labels, final output.
        ce_source_aux: CE on source labels, intermediate head.
        kd_final: KL at the final output.
        kd_aux: KL at the intermediate head.
        feat: feature MSE at the intermediate level.
        ce_pseudo: CE against teacher pseudo-labels on target images.
        adv: student's adversarial loss on target outputs.
        disc: discriminator loss (built whenever ``adv > 0``).
    """

    ce_source: float = 1.0
    ce_source_aux: float = 0.4
    kd_final: float = 1.0
    kd_aux: float = 0.5
    feat: float = 0.0
    ce_pseudo: float = 1.0
    adv: float = 0.0
    disc: float = 1.0


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

    Args:
        student: the model being trained (registered as ``student_model`` unless
            ``owns_student`` is False).
        teacher: the frozen teacher; set to eval mode, ``requires_grad=False``, and kept
            in a plain list so it is not a submodule (not in ``state_dict()``,
            ``parameters()``, nor wrapped by DDP).
        weights: term weights; terms with weight 0 are skipped.
        temperature: KD temperature ``T``.
        pseudo_threshold: confidence threshold of target pseudo-labels, or ``None``.
        target_priors: per target domain, a ``(K, E)`` bool allowed tensor
            (:func:`labelbridge.taxonomy.priors.allowed_tensor`) or ``None`` (plain argmax).
        kd_priors: restrict the teacher's soft labels on target images to the classes
            the target ontology allows (:func:`constrained_kl_distillation`); ``False``:
            distil the unconstrained teacher distribution there too.
        distill_on: the batches the KD and feature terms use: ``"both"``, ``"source"``
            or ``"target"`` (then the teacher does not run on source images unless
            another term needs it).
        kd_source_agree: KD on source images only where the teacher's argmax equals the
            source label (:func:`agreement_mask`).
        teacher_scale: factor by which images are resized before the teacher sees them
            (e.g. ``2.0`` for a teacher trained at twice the training resolution).
        discriminator_width: first-layer width of the AdaptSegNet discriminator.
        owns_student: register the student as a submodule (``student_model``); ``False``
            when the caller registers it itself.

    Raises:
        ConfigError: a term needs an output (``"aux_logits"``, ``"features"``) that the
            student or teacher does not return, or the class counts differ.

    Example:
        >>> from labelbridge.models import TinySegNet
        >>> task = DistillationTask(student=TinySegNet(3, width=4), teacher=TinySegNet(3, width=8),
        ...                         weights=DistillWeights(feat=1.0))
        >>> x, y = torch.rand(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
        >>> sorted(task(source_images=x, source_labels=y, target_images=x))
        ['ce_pseudo', 'ce_source', 'ce_source_aux', 'feat', 'kd_aux', 'kd_final']
    """

    def __init__(
        self,
        *,
        student: SegmentationModel,
        teacher: SegmentationModel,
        weights: DistillWeights,
        temperature: float = 1.0,
        pseudo_threshold: float | None = None,
        target_priors: Sequence[torch.Tensor | None] = (),
        kd_priors: bool = True,
        distill_on: str = "both",
        kd_source_agree: bool = False,
        teacher_scale: float = 1.0,
        discriminator_width: int = 64,
        owns_student: bool = True,
    ) -> None:
        super().__init__()
        # a LightningModule that already holds the student as ``model`` passes
        # owns_student=False, so the student's weights are not saved twice
        self._student = [student]
        if owns_student:
            self.student_model = student
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        self._teacher = [teacher]
        if teacher_scale <= 0:
            raise ValueError(f"teacher_scale must be > 0, got {teacher_scale}")
        self.teacher_scale = float(teacher_scale)
        self.pseudo_threshold = pseudo_threshold
        self.target_priors = list(target_priors)  # plain list: not saved, moved per use
        self.kd_priors = kd_priors
        if student.num_classes != teacher.num_classes:
            raise ConfigError(
                f"student has {student.num_classes} classes but the teacher {teacher.num_classes}"
            )
        s_out, t_out = probe_outputs(student), probe_outputs(teacher)

        def need(key: str, term: str) -> None:
            for who, outs in (("student", s_out), ("teacher", t_out)):
                if key not in outs:
                    raise ConfigError(
                        f"loss weight {term!r} > 0 needs {key!r} outputs but the {who} model returns only "
                        f"{sorted(outs)}; set {term} to 0"
                    )

        terms: list[LossTerm] = []
        w = weights
        if w.ce_source > 0:
            terms.append(SourceCrossEntropy(name="ce_source", weight=w.ce_source, output="logits"))
        if w.ce_source_aux > 0:
            if "aux_logits" not in s_out:
                raise ConfigError(
                    f"loss weight 'ce_source_aux' > 0 needs 'aux_logits' but the student returns only {sorted(s_out)}; set it to 0"
                )
            terms.append(
                SourceCrossEntropy(
                    name="ce_source_aux", weight=w.ce_source_aux, output="aux_logits"
                )
            )

        def kd_term(name: str, weight: float, output: str) -> LogitDistillation:
            return LogitDistillation(
                name=name,
                weight=weight,
                output=output,
                temperature=temperature,
                constrain_target=kd_priors,
                images=distill_on,
                source_agree_only=kd_source_agree,
            )

        if w.kd_final > 0:
            terms.append(kd_term("kd_final", w.kd_final, "logits"))
        if w.kd_aux > 0:
            need("aux_logits", "kd_aux")
            terms.append(kd_term("kd_aux", w.kd_aux, "aux_logits"))
        if w.feat > 0:
            need("features", "feat")
            terms.append(
                FeatureMatching(
                    name="feat",
                    weight=w.feat,
                    student_channels=s_out["features"][1],
                    teacher_channels=t_out["features"][1],
                    images=distill_on,
                )
            )
        if w.ce_pseudo > 0:
            terms.append(PseudoLabelCrossEntropy(name="ce_pseudo", weight=w.ce_pseudo))
        self.discriminator: OutputDiscriminator | None = None
        if w.adv > 0:
            self.discriminator = OutputDiscriminator(
                num_classes=student.num_classes, width=discriminator_width
            )
            terms.append(
                AdversarialStudent(name="adv", weight=w.adv, discriminator=self.discriminator)
            )
            terms.append(
                DiscriminatorLoss(name="disc", weight=w.disc, discriminator=self.discriminator)
            )
        if not terms:
            raise ConfigError("every loss weight is 0: nothing to train")
        self.terms = nn.ModuleList(terms)
        # KD targets on target images are restricted to the allowed classes (fixed per run)
        self.constrain_kd = (
            kd_priors
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

    def extra_modules(self) -> list[nn.Module]:
        """Trainable modules besides the student (feature adapter, discriminator)."""
        mods: list[nn.Module] = [t for t in self.terms if any(True for _ in t.parameters())]
        return mods

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
