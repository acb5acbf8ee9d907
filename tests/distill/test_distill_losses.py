"""Distillation loss terms on hand-made tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labelbridge.config.distill import DistillTaskConfig
from labelbridge.constants import IGNORE_INDEX
from labelbridge.distill.discriminator import OutputDiscriminator
from labelbridge.distill.functional import (
    TARGET_LABEL_OFFSET,
    agreement_mask,
    constrained_kl_distillation,
    kl_distillation,
    masked_cross_entropy,
    target_allowed,
    teacher_pseudo_labels,
)
from labelbridge.distill.task import DistillationTask
from labelbridge.distill.terms import (
    LOSS_TERMS,
    DistillStep,
    FeatureMatching,
    LogitDistillation,
    PseudoLabelCrossEntropy,
    SourceCrossEntropy,
)
from labelbridge.errors import ConfigError
from labelbridge.models import TinySegNet
from labelbridge.taxonomy.priors import allowed_tensor


def _logits(values: list[list[float]]) -> torch.Tensor:
    """Per-pixel class scores ``[[c0, c1, ...], ...]`` -> ``(1, C, 1, P)``."""
    return torch.tensor(values, dtype=torch.float32).T.reshape(1, len(values[0]), 1, len(values))


# ---------------------------------------------------------------------------- KL
def test_kl_is_zero_when_logits_match() -> None:
    z = torch.randn(2, 5, 4, 6)
    assert kl_distillation(z, z.clone(), temperature=3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_two_class_hand_computed_with_temperature_squared() -> None:
    teacher = _logits([[2.0, 0.0]])
    student = _logits([[0.0, 0.0]])
    for t in (1.0, 2.0, 4.0):
        pt1 = math.exp(2.0 / t) / (math.exp(2.0 / t) + 1.0)
        pt = (pt1, 1.0 - pt1)
        kl = sum(p * math.log(p / 0.5) for p in pt)
        got = kl_distillation(student, teacher, temperature=t).item()
        assert got == pytest.approx(t * t * kl, rel=1e-5)
    # T=2: p_t = (0.73106, 0.26894), KL = 0.110944 nats, times T^2 = 4
    assert kl_distillation(student, teacher, temperature=2.0).item() == pytest.approx(
        0.443776, abs=1e-5
    )


def test_kl_is_mean_over_pixels_and_direction_teacher_to_student() -> None:
    teacher = _logits([[2.0, 0.0], [0.0, 0.0]])
    student = _logits([[0.0, 0.0], [0.0, 0.0]])
    one = kl_distillation(_logits([[0.0, 0.0]]), _logits([[2.0, 0.0]]), temperature=1.0).item()
    assert kl_distillation(student, teacher, temperature=1.0).item() == pytest.approx(
        one / 2, rel=1e-5
    )
    # KL(t||s) != KL(s||t) for these distributions: the teacher is the reference
    swapped = kl_distillation(_logits([[2.0, 0.0]]), _logits([[0.0, 0.0]]), temperature=1.0).item()
    assert swapped != pytest.approx(one, rel=1e-3)


def test_kl_resizes_teacher_to_student_size() -> None:
    teacher = torch.zeros(1, 3, 8, 8)
    student = torch.zeros(1, 3, 4, 4)
    assert kl_distillation(student, teacher, temperature=1.0).item() == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------------------- CE
def test_masked_cross_entropy_ignores_ignore_id() -> None:
    logits = _logits([[2.0, 0.0], [0.0, 5.0]])  # pixel 0 prefers class 0, pixel 1 class 1
    target = torch.tensor([[[0, IGNORE_INDEX]]])
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + 1.0))
    assert masked_cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-5)
    all_ignored = torch.full((1, 1, 2), IGNORE_INDEX)
    loss = masked_cross_entropy(logits.requires_grad_(), all_ignored)
    assert loss.item() == 0.0 and loss.requires_grad


def test_source_ce_terms_read_final_and_aux_outputs() -> None:
    out = {"logits": _logits([[3.0, 0.0]]), "aux_logits": _logits([[0.0, 0.0]])}
    step = DistillStep(source_student=out, source_labels=torch.tensor([[[0]]]))
    final = SourceCrossEntropy(name="ce_source", weight=1.0, output="logits")(step).item()
    aux = SourceCrossEntropy(name="ce_source_aux", weight=1.0, output="aux_logits")(step).item()
    assert final == pytest.approx(-math.log(math.exp(3) / (math.exp(3) + 1)), rel=1e-5)
    assert aux == pytest.approx(math.log(2.0), rel=1e-5)


# ---------------------------------------------------------------------------- pseudo-labels
def test_pseudo_labels_plain_argmax_and_threshold() -> None:
    # softmax of (log 0.6, log 0.4) is (0.6, 0.4); of (log 0.9, log 0.1) is (0.9, 0.1)
    teacher = torch.log(_logits([[0.6, 0.4], [0.1, 0.9]]))
    assert teacher_pseudo_labels(teacher).flatten().tolist() == [0, 1]
    assert teacher_pseudo_labels(teacher, threshold=0.7).flatten().tolist() == [IGNORE_INDEX, 1]


def test_pseudo_labels_ontology_constrained_and_empty_row() -> None:
    # K = 3 source classes; extra raw ids: 0 -> {1, 2}, 1 -> {} (write ignore)
    allowed = np.zeros((256, 3), dtype=bool)
    allowed[0, [1, 2]] = True
    priors = [allowed_tensor(allowed), None]
    teacher = torch.log(_logits([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.7, 0.2, 0.1]]))
    extra = torch.tensor([[[0, 1, 0]]]) + TARGET_LABEL_OFFSET
    extra[0, 0, 2] = IGNORE_INDEX  # augmentation padding
    mask = target_allowed(extra, torch.tensor([0]), priors, 3)
    labels = teacher_pseudo_labels(teacher, allowed=mask)
    assert labels.flatten().tolist() == [1, IGNORE_INDEX, IGNORE_INDEX]
    # renormalised confidence of pixel 0 is 0.2 / 0.3 = 0.667
    thr = teacher_pseudo_labels(teacher, allowed=mask, threshold=0.6)
    assert thr.flatten().tolist() == [1, IGNORE_INDEX, IGNORE_INDEX]
    thr = teacher_pseudo_labels(teacher, allowed=mask, threshold=0.7)
    assert thr.flatten().tolist() == [IGNORE_INDEX] * 3
    # a domain without ground truth gets the plain argmax (padding still ignored)
    plain = teacher_pseudo_labels(
        teacher, allowed=target_allowed(extra, torch.tensor([1]), priors, 3)
    )
    assert plain.flatten().tolist() == [0, 0, IGNORE_INDEX]


def test_pseudo_label_ce_ignores_ignored_pixels() -> None:
    student = {"logits": _logits([[1.0, 0.0], [0.0, 9.0]])}
    step = DistillStep(
        source_student=student,
        source_labels=torch.zeros(1, 1, 2, dtype=torch.long),
        target_student=student,
        target_pseudo=torch.tensor([[[1, IGNORE_INDEX]]]),
    )
    got = PseudoLabelCrossEntropy(name="ce_pseudo", weight=1.0)(step).item()
    assert got == pytest.approx(-math.log(1.0 / (math.e + 1.0)), rel=1e-5)


# ---------------------------------------------------------------------------- features
def test_feature_mse_zero_when_equal_and_hand_value() -> None:
    f = torch.randn(2, 4, 3, 3)
    term = FeatureMatching(name="feat", weight=1.0, student_channels=4, teacher_channels=4)
    assert term.adapter is None
    step = DistillStep(
        source_student={"features": f},
        source_labels=torch.zeros(2, 3, 3, dtype=torch.long),
        source_teacher={"features": f.clone()},
    )
    assert term(step).item() == pytest.approx(0.0, abs=1e-7)
    step.source_teacher = {"features": f + 2.0}
    assert term(step).item() == pytest.approx(4.0, rel=1e-5)


def test_feature_adapter_used_when_channels_differ() -> None:
    term = FeatureMatching(name="feat", weight=1.0, student_channels=2, teacher_channels=3)
    assert isinstance(term.adapter, torch.nn.Conv2d)
    assert tuple(term.adapter.weight.shape) == (3, 2, 1, 1)
    with torch.no_grad():
        term.adapter.weight.zero_()
        term.adapter.weight[0, 0] = 1.0
        term.adapter.weight[1, 1] = 1.0
        term.adapter.weight[2, 0] = 1.0
    # spatially constant maps: the bilinear resize of the teacher's 8x8 map is exact
    s = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4).clone().requires_grad_()
    t = torch.tensor([1.0, -2.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8).clone()
    step = DistillStep(
        source_student={"features": s},
        source_labels=torch.zeros(1, 4, 4, dtype=torch.long),
        source_teacher={"features": t},
    )
    assert term(step).item() == pytest.approx(0.0, abs=1e-7)
    step.source_teacher = {"features": t + torch.tensor([0.0, 0.0, 3.0]).view(1, 3, 1, 1)}
    loss = term(step)
    assert loss.item() == pytest.approx(9.0 / 3.0, rel=1e-6)  # one channel of three off by 3
    loss.backward()
    assert term.adapter.weight.grad is not None


def test_logit_distillation_weights_source_and_target_by_pixels() -> None:
    zero = torch.zeros(1, 2, 1, 1)
    teacher = _logits([[2.0, 0.0]])
    kl1 = kl_distillation(zero, teacher, temperature=1.0).item()
    step = DistillStep(
        source_student={"logits": zero},
        source_labels=torch.zeros(1, 1, 1, dtype=torch.long),
        source_teacher={"logits": teacher},
        target_student={"logits": torch.zeros(1, 2, 1, 3)},
        target_teacher={"logits": torch.zeros(1, 2, 1, 3)},
    )
    term = LogitDistillation(name="kd_final", weight=1.0, temperature=1.0)
    assert term(step).item() == pytest.approx(kl1 / 4, rel=1e-5)


# ---------------------------------------------------------------------------- KD with priors
def _priors_case() -> tuple[list[torch.Tensor | None], torch.Tensor]:
    """K = 3; extra raw id 0 allows {1, 2}, id 1 allows nothing; pixel 2 is padding."""
    allowed = np.zeros((256, 3), dtype=bool)
    allowed[0, [1, 2]] = True
    extra = torch.tensor([[[0, 1, 0]]]) + TARGET_LABEL_OFFSET
    extra[0, 0, 2] = IGNORE_INDEX
    return [allowed_tensor(allowed), None], extra


def test_target_allowed_masks_rows_padding_and_unconstrained_domains() -> None:
    priors, extra = _priors_case()
    mask = target_allowed(extra, torch.tensor([0]), priors, 3)
    assert mask.shape == (1, 3, 1, 3)
    assert mask[0, :, 0, 0].tolist() == [False, True, True]
    assert mask[0, :, 0, 1].tolist() == [False, False, False]  # ignore row
    assert mask[0, :, 0, 2].tolist() == [False, False, False]  # padding
    plain = target_allowed(extra, torch.tensor([1]), priors, 3)
    assert plain[0, :, 0, 0].tolist() == [True] * 3 and not plain[0, :, 0, 2].any()


def test_constrained_kl_hand_value_and_kept_pixels() -> None:
    priors, extra = _priors_case()
    mask = target_allowed(extra, torch.tensor([0]), priors, 3)
    teacher = torch.log(_logits([[0.7, 0.2, 0.1]] * 3))
    student = torch.zeros(1, 3, 1, 3)
    value, n = constrained_kl_distillation(student, teacher, mask, temperature=1.0)
    assert n == 1  # only pixel 0 has allowed classes
    # target (0, 2/3, 1/3) against uniform student: KL = sum q log(q / (1/3))
    expect = (2 / 3) * math.log((2 / 3) * 3) + (1 / 3) * math.log((1 / 3) * 3)
    assert value.item() == pytest.approx(expect, rel=1e-5)
    # T = 2: target (0.2^0.5, 0.1^0.5) renormalised, scaled by T^2
    q = torch.tensor([0.2, 0.1]).sqrt()
    q = q / q.sum()
    expect2 = 4.0 * float((q * (q * 3).log()).sum())
    value2, _ = constrained_kl_distillation(student, teacher, mask, temperature=2.0)
    assert value2.item() == pytest.approx(expect2, rel=1e-5)
    # zero when the student matches the constrained target; all-masked: zero, n = 0
    match = torch.log(torch.tensor([1e-12, 2 / 3, 1 / 3])).reshape(1, 3, 1, 1).expand(1, 3, 1, 3)
    assert constrained_kl_distillation(match, teacher, mask, temperature=1.0)[0].item() == (
        pytest.approx(0.0, abs=1e-6)
    )
    none = torch.zeros_like(mask)
    zero, n0 = constrained_kl_distillation(student, teacher, none, temperature=1.0)
    assert n0 == 0 and zero.item() == 0.0


def test_constrained_kl_argmax_is_the_pseudo_label() -> None:
    torch.manual_seed(0)
    allowed = np.zeros((256, 5), dtype=bool)
    allowed[0, [0, 1]] = True
    allowed[1, [2, 3, 4]] = True
    priors = [allowed_tensor(allowed)]
    extra = torch.randint(0, 2, (2, 4, 4)) + TARGET_LABEL_OFFSET
    domains = torch.zeros(2, dtype=torch.long)
    teacher = torch.randn(2, 5, 4, 4) * 3
    mask = target_allowed(extra, domains, priors, 5)
    soft = torch.softmax(teacher.masked_fill(~mask, float("-inf")), dim=1)
    hard = teacher_pseudo_labels(teacher, allowed=mask)
    assert torch.equal(soft.argmax(dim=1), hard)


def test_task_constrains_target_kd_only_with_kd_priors() -> None:
    priors, extra = _priors_case()
    extra = extra.repeat(1, 8, 4)  # (1, 8, 12): the 1x3 pattern tiled
    torch.manual_seed(0)
    student, teacher = TinySegNet(3, width=4), TinySegNet(3, width=8)
    images = torch.rand(1, 3, 8, 12)
    kwargs = dict(
        source_images=images,
        source_labels=torch.zeros(1, 8, 12, dtype=torch.long),
        target_images=images,
        target_extra_labels=extra,
        target_domains=torch.tensor([0]),
    )
    values = {}
    for flag in (True, False):
        task = DistillationTask(
            student=student,
            teacher=teacher,
            settings=DistillTaskConfig(
                losses=dict(ce_source=0, ce_source_aux=0, kd_aux=0, ce_pseudo=0),
                temperature=1.0,
                kd_priors=flag,
            ),
            target_priors=priors,
        )
        values[flag] = task(**kwargs)["kd_final"].item()
    with torch.no_grad():
        s, t = student(images), teacher(images)
    src = kl_distillation(s, t, temperature=1.0).item()
    mask = target_allowed(extra, torch.tensor([0]), priors, 3)
    tgt, n = constrained_kl_distillation(s, t, mask, temperature=1.0)
    assert n == 32  # pixels with raw id 0: one column in three
    assert values[True] == pytest.approx((96 * src + n * tgt.item()) / (96 + n), rel=1e-5)
    assert values[False] == pytest.approx(src, rel=1e-5)  # same images on both sides


def test_source_kd_on_agreeing_pixels_only() -> None:
    teacher = _logits([[2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    labels = torch.tensor([[[0, 1, IGNORE_INDEX]]])  # agree, disagree, ignored
    mask = agreement_mask(teacher, labels)
    assert mask[0, :, 0].T.tolist() == [[True, True], [False, False], [False, False]]
    student = torch.zeros(1, 2, 1, 3)
    step = DistillStep(
        source_student={"logits": student},
        source_labels=labels,
        source_teacher={"logits": teacher},
    )
    only = LogitDistillation(name="kd_final", weight=1.0, temperature=1.0, source_agree_only=True)
    one = kl_distillation(_logits([[0.0, 0.0]]), _logits([[2.0, 0.0]]), temperature=1.0).item()
    assert only(step).item() == pytest.approx(one, rel=1e-5)  # pixel 0 alone
    plain = LogitDistillation(name="kd_final", weight=1.0, temperature=1.0)
    assert plain(step).item() == pytest.approx(
        kl_distillation(student, teacher, temperature=1.0).item(), rel=1e-6
    )


def test_teacher_scale_enlarges_the_teacher_input_and_resizes_logits_back() -> None:
    torch.manual_seed(0)
    student, teacher = TinySegNet(3, width=4), TinySegNet(3, width=8)
    task = DistillationTask(
        student=student,
        teacher=teacher,
        settings=DistillTaskConfig(losses=dict(ce_source_aux=0, kd_aux=0, ce_pseudo=0)),
        teacher_scale=2.0,
    )
    images = torch.rand(2, 3, 8, 12)
    out = task._teacher_outputs(images)
    big = F.interpolate(images, scale_factor=2.0, mode="bilinear", align_corners=False)
    with torch.no_grad():
        expect = F.interpolate(teacher(big), size=(8, 12), mode="bilinear", align_corners=False)
    assert out["logits"].shape == (2, 3, 8, 12)
    assert torch.allclose(out["logits"], expect, atol=1e-6)
    with pytest.raises(ValueError, match="teacher_scale must be > 0"):
        DistillationTask(
            student=student, teacher=teacher, settings=DistillTaskConfig(), teacher_scale=0
        )


def test_distill_on_selects_batches_and_skips_the_source_teacher() -> None:
    torch.manual_seed(0)
    student, teacher = TinySegNet(3, width=4), TinySegNet(3, width=8)
    src, tgt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 12)
    values = {}
    for images in ("both", "source", "target"):
        task = DistillationTask(
            student=student,
            teacher=teacher,
            settings=DistillTaskConfig(
                losses=dict(ce_source=0, ce_source_aux=0, kd_aux=0, ce_pseudo=0),
                temperature=1.0,
                distill_on=images,
            ),
        )
        assert task.needs_source_teacher == (images != "target")
        values[images] = task(
            source_images=src,
            source_labels=torch.zeros(2, 8, 8, dtype=torch.long),
            target_images=tgt,
        )["kd_final"].item()
    # both = pixel-weighted mean of source (128 px) and target (192 px)
    expect = (128 * values["source"] + 192 * values["target"]) / 320
    assert values["both"] == pytest.approx(expect, rel=1e-4)
    assert values["source"] != pytest.approx(values["target"], rel=1e-3)
    with pytest.raises(ValueError, match="images must be one of"):
        LogitDistillation(name="kd_final", weight=1.0, images="all")


# ---------------------------------------------------------------------------- the task
def _task(**weights: float) -> DistillationTask:
    torch.manual_seed(0)
    return DistillationTask(
        student=TinySegNet(3, width=4),
        teacher=TinySegNet(3, width=8),
        settings=DistillTaskConfig(losses=weights, temperature=2.0, discriminator_width=4),
    )


def test_teacher_frozen_and_outside_state_dict_and_parameters() -> None:
    task = _task(feat=1.0, adv=0.1)
    teacher_params = {id(p) for p in task.teacher.parameters()}
    assert teacher_params.isdisjoint(id(p) for p in task.parameters())
    # the task's parameters are its own (adapter, discriminator), not the student's
    assert {id(p) for p in task.student.parameters()}.isdisjoint(id(p) for p in task.parameters())
    assert not any(k.startswith("_teacher") or ".teacher" in k for k in task.state_dict())
    assert all(not p.requires_grad for p in task.teacher.parameters())
    assert not task.teacher.training
    task.train()
    assert not task.teacher.training  # train() does not reach the teacher
    x = torch.rand(2, 3, 32, 32)
    y = torch.randint(0, 3, (2, 32, 32))
    losses = task(source_images=x, source_labels=y, target_images=torch.rand(2, 3, 32, 32))
    assert set(losses) == {
        "ce_source",
        "ce_source_aux",
        "kd_final",
        "kd_aux",
        "feat",
        "ce_pseudo",
        "adv",
        "disc",
    }
    task.total(losses).backward()
    assert all(p.grad is None for p in task.teacher.parameters())
    assert all(p.grad is not None for p in task.student.parameters())
    # the adapter (8 <- 4 channels) and the discriminator train too
    assert any(k.startswith("terms.") and "adapter" in k for k in task.state_dict())
    assert task.discriminator is not None and all(
        p.grad is not None for p in task.discriminator.parameters()
    )


def test_adversarial_term_trains_student_only_and_discriminator_term_disc_only() -> None:
    task = _task(
        ce_source=0.0, ce_source_aux=0.0, kd_final=0.0, kd_aux=0.0, ce_pseudo=0.0, adv=1.0, disc=0.0
    )
    x = torch.rand(1, 3, 32, 32)
    losses = task(
        source_images=x, source_labels=torch.zeros(1, 32, 32, dtype=torch.long), target_images=x
    )
    losses["adv"].backward()
    assert all(p.grad is None for p in task.discriminator.parameters())
    assert any(p.grad is not None for p in task.student.parameters())
    task.zero_grad(set_to_none=True)
    task.student.zero_grad(set_to_none=True)  # the student is its trainer's, not the task's
    losses = task(
        source_images=x, source_labels=torch.zeros(1, 32, 32, dtype=torch.long), target_images=x
    )
    losses["disc"].backward()
    assert all(p.grad is None for p in task.student.parameters())
    assert all(p.grad is not None for p in task.discriminator.parameters())


def test_zero_weights_skip_terms_and_missing_outputs_are_config_errors() -> None:
    task = _task(ce_source_aux=0.0, kd_aux=0.0, ce_pseudo=0.0)
    x = torch.rand(1, 3, 16, 16)
    losses = task(source_images=x, source_labels=torch.zeros(1, 16, 16, dtype=torch.long))
    assert set(losses) == {"ce_source", "kd_final"}

    class NoAux(TinySegNet):
        def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": super().forward_raw(x)["logits"]}

    with pytest.raises(ConfigError, match="kd_aux"):
        DistillationTask(
            student=TinySegNet(3, width=4),
            teacher=NoAux(3, width=4),
            settings=DistillTaskConfig(losses=dict(ce_source_aux=0.0)),
        )
    with pytest.raises(ConfigError, match="classes"):
        DistillationTask(
            student=TinySegNet(3, width=4),
            teacher=TinySegNet(4, width=4),
            settings=DistillTaskConfig(),
        )


def test_discriminator_output_shape() -> None:
    d = OutputDiscriminator(num_classes=3, width=4)
    assert tuple(d(torch.rand(2, 3, 64, 96)).shape) == (2, 1, 2, 3)


def test_every_loss_weight_names_a_registered_term_built_in_that_order() -> None:
    from labelbridge.config.distill import LossWeights

    assert list(LOSS_TERMS) == list(LossWeights.model_fields)
    every = _task(feat=1.0, adv=0.1)
    assert [t.name for t in every.terms] == list(LOSS_TERMS)
    # the discriminator's loss comes with the adversarial term only, and both share one
    # discriminator, registered once on the task
    no_adv = _task(feat=1.0, adv=0.0, disc=1.0)
    assert "disc" not in [t.name for t in no_adv.terms] and no_adv.discriminator is None
    assert sum(k.startswith("discriminator.") for k in every.state_dict()) > 0
    assert not any(".disc" in k or "_disc" in k for k in every.state_dict())
