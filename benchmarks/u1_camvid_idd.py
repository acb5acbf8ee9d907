"""Benchmark U1: CamVid-11 as the source taxonomy, IDD-Lite as the extra dataset.

Protocol (``../shared/design/benchmarks.md``, U1), run by :func:`labelbridge.pipeline.run_pipeline`
once per seed:

* source D_s: CamVid-11 train (367); model selection on CamVid val (101); final numbers on
  CamVid test (233);
* extra D_e: IDD-Lite train (1403) with its level-1 ground truth mapped through
  ``idd_level1_to_camvid11`` (drivable -> {Road}, far objects -> {Building, Tree}, ...);
* robustness set (never trained on): IDD-Lite val (204), CamVid-11 predictions projected to
  IDD level-1;
* every model (teacher and students) is ESPNetv2 s=2.0 initialised from the published
  Cityscapes weights (the role the paper's ADE20K weights play), the 11-class classifier
  mapped from the Cityscapes one through ``camvid11_to_cityscapes``
  (``model.classifier_from``; ``--classifier-init reinit``: re-initialised instead); same
  schedule for teacher and students; that common initial model is scored as a
  reference row ("init");
* arms: teacher (CamVid only); Naive Student (pseudo-labels without priors); student with
  priors; each student also after its source fine-tune at 0.1x LR (the pipeline's final
  model); second iteration (the fine-tuned priors student teaches round 2); and, through
  the pipeline's ``targets`` switch, the priors arm's other ways to learn from IDD-Lite
  under the same mapping and schedule: soft labels (top 3), partial labels (IDD-Lite's own
  level-1 ground truth as sets of CamVid classes, no teacher), hard + partial labels (each
  after its source fine-tune).

The students' stage-1 checkpoints ("before fine-tune") are evaluated with the
pipeline's own :func:`labelbridge.pipeline.evaluate_checkpoint`; the second iteration is
a second pipeline run (priors arm only, two rounds) in the same run folder, which skips
every stage the first run finished.

Usage (from the repository root)::

    python -m benchmarks.u1_camvid_idd --profile cpu     # 2 CPU cores, ~1.5 h idle (resumes)
    python -m benchmarks.u1_camvid_idd --profile gpu     # one GPU, a few minutes
    python -m benchmarks.u1_camvid_idd --smoke --results /tmp/r.md --work-dir /tmp/w

Writes section ``u1-camvid-idd`` of ``benchmarks/results.md`` (``--results``) and
``results_u1.json`` beside it; run folders go to ``benchmarks/_work/u1_<profile>/seed<N>``.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from benchmarks.common.evaluation import as_scores
from benchmarks.common.figures import copy_previews
from benchmarks.common.paths import CAMVID_ROOT, IDD_ROOT, TEACHER_S2
from benchmarks.common.profiles import U1_PROFILES, Profile, setup_process, training_settings
from benchmarks.common.runs import BenchmarkRun, cached_json, run_jobs, start_run
from benchmarks.common.tables import (
    Summary,
    head_to_head,
    miou_table,
    pseudo_report_summary,
    section_markdown,
    summarize,
)

SECTION = "u1-camvid-idd"
JSON_NAME = "results_u1.json"
TAXONOMY = "camvid11"
MODEL_SPEC = "espnetv2:s=2.0"
ONTOLOGY = "idd_level1_to_camvid11"
SETS = ("camvid_test", "idd_val")
#: Arms in table order.
#: Mapping that carries the Cityscapes classifier over to CamVid-11 (``classifier_from``).
CLASSIFIER_ONTOLOGY = "camvid11_to_cityscapes"
TITLES = {
    "init": "initial model (Cityscapes weights, classifier mapped; no CamVid training)",
    "teacher": "teacher (CamVid only)",
    "naive": "Naive Student (no priors)",
    "naive_ft": "Naive Student + source fine-tune",
    "priors": "student with priors",
    "priors_ft": "student with priors + source fine-tune",
    "iter2": "second iteration (priors + fine-tune, round 2)",
    "soft_ft": "student with priors, soft labels (top {k}) + source fine-tune",
    "partial_ft": "student on partial labels (no teacher) + source fine-tune",
    "hard_partial_ft": "student with priors, hard + partial labels + source fine-tune",
}
#: Soft-label classes kept per pixel (every pseudo-label stage writes them, so the runs
#: with and without soft students share their pseudo-label stages).
SOFT_TOP_K = 3
TITLES["soft_ft"] = TITLES["soft_ft"].format(k=SOFT_TOP_K)
#: The priors arm's other students: result key -> (target, arm of its pipeline row).
LEARNED_TARGETS = {
    "soft_ft": ("soft", "priors"),
    "partial_ft": ("partial", None),
    "hard_partial_ft": ("hard+partial", "priors"),
}


def model_section(classifier_init: str) -> dict[str, Any]:
    """The common initial model: Cityscapes weights, classifier ``mapped`` or ``reinit``."""
    model: dict[str, Any] = {"spec": MODEL_SPEC, "weights": str(TEACHER_S2)}
    if classifier_init == "mapped":
        model["classifier_from"] = CLASSIFIER_ONTOLOGY
    else:
        model["reinit_classifier"] = True
    return model


def training_section(
    profile: Profile, seed: int, *, finetune: bool, classifier_init: str, epochs: int
) -> dict[str, Any]:
    """The training keys of teacher and students (the pipeline adds data and output)."""
    return {
        "model": model_section(classifier_init),
        **training_settings(profile, seed, epochs=epochs),
        "finetune": {"enabled": finetune, "lr_factor": 0.1, "epochs": profile.finetune_epochs},
    }


def pipeline_config(
    profile: Profile,
    seed: int,
    run_dir: Path,
    *,
    arms: list[str],
    iterations: int,
    classifier_init: str,
    targets: tuple[str, ...] = ("hard",),
) -> Any:
    """The pipeline config of one seed."""
    from labelbridge.config.pipeline import PipelineConfig

    return PipelineConfig.model_validate(
        {
            "run_dir": str(run_dir),
            "taxonomy": TAXONOMY,
            "source": [
                {
                    "reader": "camvid",
                    "root": str(CAMVID_ROOT),
                    "split": "train",
                    "limit": profile.source_limit,
                }
            ],
            "val": [
                {
                    "reader": "camvid",
                    "root": str(CAMVID_ROOT),
                    "split": "val",
                    "label": "camvid_val",
                    "limit": profile.val_limit,
                }
            ],
            "evaluation": [
                {
                    "reader": "camvid",
                    "root": str(CAMVID_ROOT),
                    "split": "test",
                    "label": "camvid_test",
                    "limit": profile.eval_limit,
                },
                {
                    "reader": "idd_lite",
                    "root": str(IDD_ROOT),
                    "split": "val",
                    "ontology": ONTOLOGY,
                    "label": "idd_val",
                    "limit": profile.eval_limit,
                },
            ],
            "teacher": {
                "train": training_section(
                    profile,
                    seed,
                    finetune=False,
                    classifier_init=classifier_init,
                    epochs=profile.epochs,
                )
            },
            "extras": [
                {
                    "name": "idd_lite",
                    "reader": "idd_lite",
                    "root": str(IDD_ROOT),
                    "split": "train",
                    "ontology": ONTOLOGY,
                    "weight": 1.0,
                    "limit": profile.extra_limit,
                }
            ],
            "pseudo": {
                "arms": arms,
                "tta": {"flip": profile.tta_flip, "scales": list(profile.tta_scales)},
                "outputs": {
                    "previews": profile.previews,
                    "soft_labels": {"enabled": True, "top_k": SOFT_TOP_K},
                },
                "device": profile.device,
                "batch_size": 1,
                "num_workers": 2,
                "threads": profile.threads if profile.device == "cpu" else None,
            },
            "student": training_section(
                profile,
                seed,
                finetune=True,
                classifier_init=classifier_init,
                epochs=profile.student_stage_epochs,
            ),
            "iterations": iterations,
            "targets": list(targets),
            "eval": {"device": profile.device, "input_size": profile.eval_size, "batch_size": 4},
        }
    )


def evaluate_init(
    profile: Profile, work: Path, *, classifier_init: str, verbose: bool
) -> dict[str, Any] | None:
    """Scores of the common initial model (``None`` with a re-initialised classifier,
    which predicts noise). Cached in ``work/init``."""
    if classifier_init != "mapped":
        return None
    from labelbridge.models import create_model
    from labelbridge.models.checkpoint import save_checkpoint
    from labelbridge.pipeline import evaluate_checkpoint
    from labelbridge.taxonomy import load_taxonomy

    setup_process(profile, verbose=verbose)
    folder = work / "init"
    cfg = pipeline_config(
        profile, 0, folder, arms=["priors"], iterations=1, classifier_init=classifier_init
    )

    def score() -> dict[str, Any]:
        taxonomy = load_taxonomy(TAXONOMY)
        model = create_model(
            MODEL_SPEC,
            taxonomy.num_classes,
            weights=TEACHER_S2,
            classifier_from=CLASSIFIER_ONTOLOGY,
        )
        ckpt = save_checkpoint(folder / "init.ckpt", model, spec=MODEL_SPEC, taxonomy=taxonomy)
        miou, per_class = evaluate_checkpoint(cfg, checkpoint=str(ckpt))
        return {"miou": miou, "per_class_iou": per_class}

    data = cached_json(folder / "eval.json", score)
    return as_scores(data["miou"], data["per_class_iou"], SETS)


def run_seed(
    seed: int, *, profile: Profile, work: Path, verbose: bool, classifier_init: str
) -> dict[str, Any]:
    """Every arm of one seed (resumable: finished stages are skipped).

    Returns:
        ``{"evals": {arm: {set: {"mIoU", "per_class_iou"}}}, "pseudo": {name: stats}}``.
    """
    from labelbridge.engine.callbacks import read_stage_marker
    from labelbridge.pipeline import evaluate_checkpoint, run_pipeline

    setup_process(profile, verbose=verbose)
    run_dir = work / f"seed{seed}"
    cfg = pipeline_config(
        profile,
        seed,
        run_dir,
        arms=["priors", "no_priors"],
        iterations=1,
        classifier_init=classifier_init,
    )
    first = run_pipeline(cfg)
    evals: dict[str, Any] = {}
    for key, it, arm in (
        ("teacher", 0, None),
        ("naive_ft", 1, "no_priors"),
        ("priors_ft", 1, "priors"),
    ):
        row = first.row(it, arm)
        evals[key] = as_scores(row.miou, row.per_class_iou, SETS)
    for key, arm in (("naive", "no_priors"), ("priors", "priors")):
        marker = read_stage_marker(run_dir / f"iter1/student_{arm}" / "train")
        if marker is None:
            raise RuntimeError(f"{run_dir}: stage 1 of the {arm} student left no stage marker")

        def stage1(ckpt: str = marker["best_checkpoint"]) -> dict[str, Any]:
            miou, per_class = evaluate_checkpoint(cfg, checkpoint=ckpt)
            return {"checkpoint": ckpt, "miou": miou, "per_class_iou": per_class}

        data = cached_json(run_dir / f"iter1/student_{arm}" / "eval_stage1.json", stage1)
        evals[key] = as_scores(data["miou"], data["per_class_iou"], SETS)
    pseudo = {
        f"seed {seed} / round 1 / {arm}": pseudo_report_summary(
            run_dir / f"iter1/pseudo_{arm}" / "idd_lite"
        )
        for arm in ("priors", "no_priors")
    }
    # the priors arm's soft, partial and hard + partial students: the same run folder,
    # so the teacher, the pseudo-labels and the hard student are reused, not redone
    learned = run_pipeline(
        pipeline_config(
            profile,
            seed,
            run_dir,
            arms=["priors"],
            iterations=1,
            classifier_init=classifier_init,
            targets=("hard", *(t for t, _ in LEARNED_TARGETS.values())),
        )
    )
    for key, (target, arm) in LEARNED_TARGETS.items():
        row = learned.row(1, arm, target)
        evals[key] = as_scores(row.miou, row.per_class_iou, SETS)
    if profile.second_iteration:
        cfg2 = pipeline_config(
            profile, seed, run_dir, arms=["priors"], iterations=2, classifier_init=classifier_init
        )
        second = run_pipeline(cfg2)
        row = second.row(2, "priors")
        evals["iter2"] = as_scores(row.miou, row.per_class_iou, SETS)
        pseudo[f"seed {seed} / round 2 / priors"] = pseudo_report_summary(
            run_dir / "iter2/pseudo_priors" / "idd_lite"
        )
    return {"evals": evals, "pseudo": pseudo}


def check_goals(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The issue's U1 goal: student with priors (+ fine-tune) above teacher and Naive
    Student on both sets by more than the seed spread (the priors arm's minimum above
    the other arm's maximum)."""
    out: dict[str, Any] = {}
    for s in SETS:
        summ = summarize(results, s)
        for ours in ("priors", "priors_ft"):
            for other in ("teacher", "naive", "naive_ft"):
                if ours not in summ or other not in summ:
                    continue
                a: Summary = summ[ours]
                b: Summary = summ[other]
                out[f"{s}: {ours} - {other}"] = {
                    "mean_diff": a.mean - b.mean,
                    "beyond_spread": a.lo > b.hi,
                }
    return out


def add_options(p: Any) -> None:
    """U1's own command-line options."""
    p.add_argument(
        "--classifier-init",
        choices=("mapped", "reinit"),
        default="mapped",
        help="the 11-class classifier of the common initial model: mapped from the "
        f"Cityscapes classifier through {CLASSIFIER_ONTOLOGY} (default), or re-initialised",
    )


def main(argv: list[str] | None = None) -> int:
    run = start_run(
        "U1",
        __file__,
        __doc__.splitlines()[0],
        U1_PROFILES,
        argv,
        extra=add_options,
        work_name=lambda args: f"u1-{args.classifier_init}",
    )
    args, profile, work = run.args, run.profile, run.work

    init = evaluate_init(profile, work, classifier_init=args.classifier_init, verbose=args.verbose)
    worker = functools.partial(
        run_seed,
        profile=profile,
        work=work,
        verbose=args.verbose,
        classifier_init=args.classifier_init,
    )
    per_seed = run_jobs(worker, args.seeds, profile.jobs)
    run.say("all seeds done")

    results: dict[str, list[dict[str, Any]]] = {}
    if init is not None:
        results["init"] = [init]
    for key in TITLES:
        if key == "init":
            continue
        evals = [r["evals"][key] for r in per_seed if key in r["evals"]]
        if evals:
            results[key] = evals
    stats: dict[str, Any] = {}
    for r in per_seed:
        stats.update(r["pseudo"])

    figures = []
    if not args.no_figures and profile.name != "smoke":
        seed0 = work / f"seed{args.seeds[0]}"
        figures += copy_previews(
            seed0 / "iter1/pseudo_priors/idd_lite", f"u1_{profile.name}_idd_priors", 3
        )
        figures += copy_previews(
            seed0 / "iter1/pseudo_no_priors/idd_lite", f"u1_{profile.name}_idd_no_priors", 1
        )

    goals = check_goals(results)
    md = render(run, results, stats, goals, figures)
    return run.finish(SECTION, JSON_NAME, md, results=results, pseudo_labels=stats, goals=goals)


def render(
    run: BenchmarkRun,
    results: dict[str, list[dict[str, Any]]],
    stats: dict[str, Any],
    goals: dict[str, Any],
    figures: list[Path],
) -> str:
    args, profile = run.args, run.profile
    goal_lines = [
        f"- {name}: {g['mean_diff']:+.1f} mIoU (mean); beyond the seed spread: {'yes' if g['beyond_spread'] else 'no'}"
        for name, g in goals.items()
    ]
    lines = [
        *run.header("U1 — CamVid source, IDD-Lite extra"),
        f"- seeds: {', '.join(map(str, args.seeds))} (each seed trains its own teacher and students)",
        f"- resolution and schedule: {profile.describe('u1')}",
        "- second iteration: "
        + ("run (priors arm)" if profile.second_iteration else "skipped (`--no-second-iteration`)"),
        "- models: ESPNetv2 s=2.0 for teacher and students, all initialised from the published "
        "Cityscapes ESPNetv2 s=2.0 weights (the paper's ADE20K weights' role), "
        + (
            f"the 11-class classifier mapped from the Cityscapes one through `{CLASSIFIER_ONTOLOGY}` "
            "(`model.classifier_from`: each CamVid class's row is the mean of its Cityscapes "
            "classes' rows, bias + log of their count); that common start is the 'initial model' row."
            if args.classifier_init == "mapped"
            else "the classifier re-initialised for CamVid's 11 classes (`reinit_classifier`)."
        ),
        "- data: source CamVid-11 train, selection on CamVid val; extra IDD-Lite train through "
        f"`{ONTOLOGY}`; evaluation on CamVid test and on IDD-Lite val projected to IDD level-1; "
        "mIoU in %, mean over seeds (min–max).",
        "",
        miou_table(results, list(SETS), TITLES),
        "",
        "Differences of the priors students to the baselines (`beyond the seed spread`: the "
        "priors arm's worst seed beats the other arm's best seed):",
        "",
        *goal_lines,
        "",
        "The priors arm's four ways to learn from IDD-Lite under the same mapping, each after "
        "its source fine-tune (mIoU %, seed means, best first; differences to the hard-label "
        "student):",
        "",
        *head_to_head(
            results,
            list(SETS),
            ["priors_ft", *LEARNED_TARGETS],
            {"priors_ft": "hard", **{k: t for k, (t, _) in LEARNED_TARGETS.items()}},
            base="priors_ft",
        ),
        "",
    ]
    return section_markdown(
        lines,
        results=results,
        sets=SETS,
        titles=TITLES,
        pseudo_title="Pseudo-labels (IDD-Lite train)",
        stats=stats,
        figures=figures,
    )


if __name__ == "__main__":
    sys.exit(main())
