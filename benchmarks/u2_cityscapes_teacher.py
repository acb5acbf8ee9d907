"""Benchmark U2: the published Cityscapes ESPNetv2 s=2.0 as teacher, CamVid and IDD-Lite
as extra datasets with their own (differently defined) ground truth.

Protocol (``../shared/design/benchmarks.md``, U2):

* teacher: ``../shared/weights/espnetv2_s_2.0_city_1024x512.pth`` (Cityscapes, 19 classes;
  nobody here trained it);
* extras: CamVid train + val (CamVid-11 ground truth, ``camvid11_to_cityscapes``) and
  IDD-Lite train (level-1 ground truth, ``idd_level1_to_cityscapes``), pseudo-labelled once
  per arm (the teacher and the TTA are deterministic, so the labels are shared by seeds);
* students: ESPNetv2 s=2.0 initialised from the teacher's weights (all of them, the
  classifier included), trained on the pseudo-labels alone (there is no Cityscapes data
  here, so there is no source set and no source fine-tune stage); checkpoint selection on
  CamVid val projected to CamVid-11 (CamVid val is also one of the extras: its ground
  truth constrains its pseudo-labels and picks the checkpoint);
* evaluation: CamVid test (233, Cityscapes predictions projected to CamVid-11) and IDD-Lite
  val (204, projected to IDD level-1);
* arms: teacher zero-shot; Naive Student (pseudo-labels without priors); and four ways to
  learn from the extras under the same mappings, same schedule and initialisation:
  student with priors (hard labels), soft labels (the top-3 of the prior-corrected
  softmax, ``labels: {pseudo, soft: true}``), partial labels (the extras' own ground truth
  as sets of Cityscapes classes, no pseudo-labels, ``labels: {partial}``) and hard +
  partial labels (both terms).

Built on the project's own stages: :func:`labelbridge.pseudo.run.run_pseudo_label`,
:func:`labelbridge.engine.train.run_training` and
:func:`labelbridge.evaluation.evaluate_on_sets` (the pipeline needs source ground truth in
the target taxonomy, which U2 does not have).

Usage (from the repository root)::

    python -m benchmarks.u2_cityscapes_teacher --profile cpu     # 2 CPU cores, ~45 min idle
    python -m benchmarks.u2_cityscapes_teacher --profile gpu     # one GPU, a few minutes
    python -m benchmarks.u2_cityscapes_teacher --smoke --results /tmp/r.md --work-dir /tmp/w

Writes section ``u2-cityscapes-teacher`` of ``benchmarks/results.md`` (``--results``) and
``results_u2.json`` beside it; working files go to ``benchmarks/_work/u2_<profile>``.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common.evaluation import cityscapes_eval_sets, evaluate_checkpoint_file
from benchmarks.common.figures import copy_previews
from benchmarks.common.paths import CAMVID_ROOT, IDD_ROOT, TEACHER_S2
from benchmarks.common.profiles import (
    U2_PROFILES,
    Profile,
    eval_tag,
    setup_process,
    training_settings,
)
from benchmarks.common.runs import BenchmarkRun, cached_json, run_jobs, start_run
from benchmarks.common.tables import (
    head_to_head,
    miou_table,
    pseudo_report_summary,
    section_markdown,
    summarize,
)

SECTION = "u2-cityscapes-teacher"
JSON_NAME = "results_u2.json"
TAXONOMY = "cityscapes"
STUDENT_SPEC = "espnetv2:s=2.0,background=true"  # the published file keeps its 20th channel
#: Arms whose pseudo-labels are made (``priors`` also writes the soft labels).
PSEUDO_ARMS = ("no_priors", "priors")
#: Students: which pseudo-labels they read (``None``: none) and how.
ARMS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "no_priors": ("no_priors", {}),
    "priors": ("priors", {}),
    "soft": ("priors", {"soft": True}),
    "partial": (None, {"partial": True}),
    "hard_partial": ("priors", {"partial": True}),
}
#: Soft-label classes kept per pixel.
SOFT_TOP_K = 3
#: The students that learn from the extras under the priors' mappings, head to head.
LEARNING_ARMS = {
    "priors": "hard",
    "soft": "soft",
    "partial": "partial",
    "hard_partial": "hard + partial",
}
TITLES = {
    "teacher": "teacher zero-shot (ESPNetv2 s=2.0, Cityscapes)",
    "teacher_native": "teacher zero-shot, evaluated at native image size",
    "no_priors": "Naive Student (no priors)",
    "priors": "student with priors (hard labels)",
    "soft": f"student with priors (soft labels, top {SOFT_TOP_K})",
    "partial": "student on partial labels (extras' own ground truth, no pseudo-labels)",
    "hard_partial": "student with priors (hard + partial labels)",
}
#: CamVid test and IDD-Lite val, predictions projected (``camvid_test``, ``idd_val``).
EVAL_SETS = cityscapes_eval_sets()
#: (name, reader, root, split, ontology) of the pseudo-labelled extras.
EXTRAS = (
    ("camvid_train", "camvid", CAMVID_ROOT, "train", "camvid11_to_cityscapes"),
    ("camvid_val", "camvid", CAMVID_ROOT, "val", "camvid11_to_cityscapes"),
    ("idd_lite_train", "idd_lite", IDD_ROOT, "train", "idd_level1_to_cityscapes"),
)
#: Sampling weights: CamVid (train + val) and IDD-Lite drawn equally often.
EXTRA_WEIGHTS = {"camvid_train": 0.75, "camvid_val": 0.25, "idd_lite_train": 1.0}


def _extra_limit(profile: Profile, name: str) -> int | None:
    return profile.extra_limit if name.startswith("idd") else profile.camvid_extra_limit


def pseudo_config(profile: Profile, arm: str, work: Path) -> Any:
    """Pseudo-labelling config of one arm (priors on or off), everything else equal."""
    from labelbridge.config.pseudo import PseudoLabelConfig

    return PseudoLabelConfig.model_validate(
        {
            "teacher": {"checkpoint": str(TEACHER_S2)},
            "datasets": [
                {
                    "name": n,
                    "reader": r,
                    "root": str(root),
                    "split": s,
                    "ontology": o,
                    "limit": _extra_limit(profile, n),
                }
                for n, r, root, s, o in EXTRAS
            ],
            "tta": {"flip": profile.tta_flip, "scales": list(profile.tta_scales)},
            "priors": arm == "priors",
            "outputs": {
                "previews": profile.previews,
                "soft_labels": {"enabled": arm == "priors", "top_k": SOFT_TOP_K},
            },
            "output": str(work / f"pseudo_{arm}"),
            "device": profile.device,
            "batch_size": 1,
            "num_workers": 2,
            "threads": profile.threads if profile.device == "cpu" else None,
        }
    )


def train_config(profile: Profile, arm: str, seed: int, work: Path) -> Any:
    """Training config of one student (arm, seed)."""
    from labelbridge.config.train import TrainConfig

    pseudo_arm, how = ARMS[arm]

    def labels(name: str, ontology: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if pseudo_arm is not None:
            out["pseudo"] = str(work / f"pseudo_{pseudo_arm}" / name)
        if how.get("soft"):
            out["soft"] = True
        if how.get("partial"):
            out["partial"] = ontology
        return out

    return TrainConfig.model_validate(
        {
            "taxonomy": TAXONOMY,
            "datasets": [
                {
                    "reader": r,
                    "root": str(root),
                    "split": s,
                    "labels": labels(n, o),
                    "weight": EXTRA_WEIGHTS[n],
                    "source": False,
                    "limit": _extra_limit(profile, n),
                }
                for n, r, root, s, o in EXTRAS
            ],
            "val": [
                {
                    "reader": "camvid",
                    "root": str(CAMVID_ROOT),
                    "split": "val",
                    "ontology": "camvid11_to_cityscapes",
                    "label": "camvid_val",
                    "limit": profile.val_limit,
                }
            ],
            "model": {"spec": STUDENT_SPEC, "weights": str(TEACHER_S2)},
            **training_settings(profile, seed, epochs=profile.epochs),
            "finetune": {"enabled": False},
            "output": str(work / f"seed{seed}" / arm),
        }
    )


def train_and_evaluate_seed(
    seed: int, *, profile: Profile, work: Path, verbose: bool
) -> dict[str, Any]:
    """Train every arm's student for ``seed`` and evaluate it (cached in ``eval.json``).

    Returns:
        ``{arm: {set label: {"mIoU", "per_class_iou"}}}``.
    """
    from labelbridge.engine.train import run_training

    setup_process(profile, verbose=verbose)
    out: dict[str, Any] = {}
    for arm in ARMS:
        cfg = train_config(profile, arm, seed, work)
        run_dir = Path(cfg.output)

        def run(cfg: Any = cfg) -> dict[str, Any]:
            result = run_training(cfg)
            return {
                "checkpoint": str(result.final_checkpoint),
                **evaluate_checkpoint_file(result.final_checkpoint, EVAL_SETS, profile),
            }

        data = cached_json(run_dir / f"eval_{eval_tag(profile)}.json", run)
        out[arm] = {s.report_name: data[s.report_name] for s in EVAL_SETS}
    return out


def main(argv: list[str] | None = None) -> int:
    run = start_run("U2", __file__, __doc__.splitlines()[0], U2_PROFILES, argv)
    args, profile, work = run.args, run.profile, run.work
    from labelbridge.pseudo.run import run_pseudo_label

    # teacher zero-shot
    teacher = cached_json(
        work / f"teacher_eval_{eval_tag(profile)}.json",
        lambda: evaluate_checkpoint_file(TEACHER_S2, EVAL_SETS, profile),
    )
    run.say("teacher evaluated")

    # pseudo-labels of both arms (resumed from their manifests on a re-run)
    stats: dict[str, dict[str, Any] | None] = {}
    for arm in PSEUDO_ARMS:
        cfg = pseudo_config(profile, arm, work)
        run_pseudo_label(cfg)
        for name, *_ in EXTRAS:
            stats[f"{arm} / {name}"] = pseudo_report_summary(cfg.output_dir / name)
        run.say(f"pseudo-labels {arm} done")

    # students
    worker = functools.partial(
        train_and_evaluate_seed, profile=profile, work=work, verbose=args.verbose
    )
    per_seed = run_jobs(worker, args.seeds, profile.jobs)
    run.say("students trained and evaluated")

    results: dict[str, list[dict[str, Any]]] = {"teacher": [teacher]}
    if profile.eval_size is not None and profile.name != "smoke":
        # the profile scores every model at a reduced size; the Cityscapes teacher was
        # trained on larger images, so its native-size score is reported too
        native = replace(profile, eval_size=None)
        results["teacher_native"] = [
            cached_json(
                work / f"teacher_eval_{eval_tag(native)}.json",
                lambda: evaluate_checkpoint_file(TEACHER_S2, EVAL_SETS, native),
            )
        ]
        run.say("teacher evaluated at native size")
    for arm in ARMS:
        results[arm] = [seed_result[arm] for seed_result in per_seed]

    figures = []
    if not args.no_figures and profile.name != "smoke":
        for name, *_ in EXTRAS[1:]:
            figures += copy_previews(
                work / "pseudo_priors" / name, f"u2_{profile.name}_{name}_priors", 2
            )
            figures += copy_previews(
                work / "pseudo_no_priors" / name, f"u2_{profile.name}_{name}_no_priors", 1
            )

    goals = check_goals(results)
    md = render(run, results, stats, goals, figures)
    return run.finish(SECTION, JSON_NAME, md, results=results, pseudo_labels=stats, goals=goals)


def check_goals(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The issue's U2 goals on the seed means: priors >= teacher + 5 and >= Naive + 2 on
    CamVid test; the same ordering (priors > Naive > teacher) on IDD-Lite val."""
    cam = summarize(results, "camvid_test")
    idd = summarize(results, "idd_val")
    t, n, p = (cam[a].mean for a in ("teacher", "no_priors", "priors"))
    ti, ni, pi = (idd[a].mean for a in ("teacher", "no_priors", "priors"))
    best_t = max(t, cam["teacher_native"].mean) if "teacher_native" in cam else t
    best_ti = max(ti, idd["teacher_native"].mean) if "teacher_native" in idd else ti
    return {
        "camvid_priors_minus_best_teacher": p - best_t,
        "idd_priors_minus_best_teacher": pi - best_ti,
        "camvid_priors_minus_teacher": p - t,
        "camvid_priors_minus_naive": p - n,
        "idd_priors_minus_teacher": pi - ti,
        "idd_priors_minus_naive": pi - ni,
        "goal_camvid_plus5_over_teacher": p >= t + 5,
        "goal_camvid_plus2_over_naive": p >= n + 2,
        "goal_idd_ordering": pi > ni > ti,
    }


def render(
    run: BenchmarkRun,
    results: dict[str, list[dict[str, Any]]],
    stats: dict[str, dict[str, Any] | None],
    goals: dict[str, Any],
    figures: list[Path],
) -> str:
    args, profile = run.args, run.profile
    sets = [s.report_name for s in EVAL_SETS]
    yes = {True: "met", False: "not met"}
    lines = [
        *run.header("U2 — published Cityscapes teacher, CamVid + IDD-Lite extras"),
        f"- seeds: {', '.join(map(str, args.seeds))} (students; the teacher is deterministic)",
        f"- resolution and schedule: {profile.describe('u2')}",
        "- teacher: published ESPNetv2 s=2.0 Cityscapes checkpoint (20 output channels, the last one "
        "dropped). Students: the same network initialised from the teacher's weights (classifier "
        "included), trained on the pseudo-labels of CamVid train+val and IDD-Lite train (sampled "
        "50/50), checkpoint selected on CamVid val projected to CamVid-11; no source fine-tune "
        "(no Cityscapes data here).",
        "- evaluation: CamVid test projected to CamVid-11 (`camvid11_to_cityscapes`), IDD-Lite val "
        "projected to IDD level-1 (`idd_level1_to_cityscapes`); mIoU in %, mean over seeds "
        "(min–max).",
        "- the four students with priors (hard, soft, partial, hard + partial labels) share the "
        "mappings, the schedule and the initialisation; soft labels are the top "
        f"{SOFT_TOP_K} classes of the prior-corrected teacher softmax, renormalised; the partial "
        "student reads the extras' own labels as sets of Cityscapes classes (void option rows: "
        "their listed classes) and sees no pseudo-label; partial-term weight 1.",
        "",
        miou_table(results, sets, TITLES),
        "",
        "Goals (seed means): "
        f"CamVid test priors − teacher = {goals['camvid_priors_minus_teacher']:+.1f} (goal ≥ +5: "
        f"{yes[goals['goal_camvid_plus5_over_teacher']]}); priors − Naive = "
        f"{goals['camvid_priors_minus_naive']:+.1f} (goal ≥ +2: {yes[goals['goal_camvid_plus2_over_naive']]}); "
        f"against the better of the two teacher rows: {goals['camvid_priors_minus_best_teacher']:+.1f}; "
        f"IDD-Lite val priors − teacher = {goals['idd_priors_minus_teacher']:+.1f} (better teacher row: "
        f"{goals['idd_priors_minus_best_teacher']:+.1f}), priors − Naive = "
        f"{goals['idd_priors_minus_naive']:+.1f} (ordering priors > Naive > teacher: "
        f"{yes[goals['goal_idd_ordering']]}).",
        "",
    ]
    lines += [
        "The four ways to learn from the extras under the same mappings (mIoU %, seed means, "
        "best first; differences to the hard-label student):",
        "",
        *head_to_head(results, sets, list(LEARNING_ARMS), LEARNING_ARMS, base="priors"),
        "",
    ]
    return section_markdown(
        lines,
        results=results,
        sets=sets,
        titles=TITLES,
        pseudo_title="Pseudo-labels",
        stats=stats,
        figures=figures,
    )


if __name__ == "__main__":
    sys.exit(main())
