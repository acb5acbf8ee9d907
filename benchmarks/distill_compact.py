"""Benchmark U2, compact-student arm (issue 7 item 3): multi-level distillation into a
compact ESPNetv2 versus the same compact network trained on the same pseudo-labels
without distillation terms.

Setting (``../shared/design/benchmarks.md``, U2):

* teacher: the published Cityscapes ESPNetv2 s=2.0 (frozen), or with ``--teacher`` any
  labelbridge checkpoint of the Cityscapes taxonomy, e.g. the U2 student with priors
  (``benchmarks/_work/u2_*/seed0/priors/final.ckpt``); it makes every pseudo-label;
* student: ESPNetv2 s=0.5 (``--student-s 1.0`` for s=1.0), initialised from the
  published compact Cityscapes weights of the same width (both arms);
* source: CamVid train with Cityscapes pseudo-labels made once by the teacher with the
  CamVid priors (``camvid11_to_cityscapes``), shared by both arms;
* target: IDD-Lite train; the teacher labels its crops online, constrained by IDD's
  level-1 ground truth (``idd_level1_to_cityscapes``); both arms use these labels. With
  ``--target-unlabelled`` its labels are not read (the paper's domain adaptation): plain
  argmax pseudo-labels and unconstrained KD targets;
* arms: ``distilled`` (CE source + KL final at T=2 + feature matching + CE pseudo) and
  ``no_distill`` (CE source + CE pseudo only; the teacher only provides labels);
* evaluation: CamVid test (projected to CamVid-11) and IDD-Lite val (projected to IDD
  level-1), mIoU over 3 seeds (mean and spread); references: teacher and the initial
  compact model zero-shot; parameters; CPU latency of one 1024x512 image.

Usage (from the project root)::

    python -m benchmarks.distill_compact --profile cpu --threads 1 --jobs 2
        # ~15 min on 2 CPU cores (+4 min of pseudo-labels the first time per teacher)
    python -m benchmarks.distill_compact --profile gpu          # ~15-25 min on one GPU
    python -m benchmarks.distill_compact --smoke                # ~30 s: checks the plumbing

Variants (each its own section and run folders): ``--kd/--feat/--temperature`` (loss
weights), ``--no-kd-priors``, ``--distill-on``, ``--kd-source-agree``,
``--teacher-scale``, ``--teacher``, ``--target-unlabelled``, ``--epochs`` /
``--steps-per-epoch``; see ``--help``.

Writes its table to ``benchmarks/results.md`` (section ``distill_compact``); ``--smoke``
does not write results. Working files go to ``benchmarks/_work/distill_compact/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.common.evaluation import cityscapes_eval_sets
from benchmarks.common.paths import DATA, DEFAULT_WORK, REPO, TEACHER_S2, WEIGHTS, missing_paths
from benchmarks.common.results import command_line, program, run_header, write_section
from benchmarks.common.runs import run_jobs

SECTION = "distill_compact"
TEACHER_FILE = TEACHER_S2.name
LATENCY_SIZE = (1024, 512)  # W, H

log = logging.getLogger("distill_compact")


@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark profile.

    Attributes:
        resize: ``(W, H)`` every training image is resized to.
        crop: ``(H, W)`` training crop after random rescaling.
        epochs: training epochs per run.
        steps_per_epoch: optimiser steps per epoch.
        batch_size: source (and target) images per step.
        lr: AdamW learning rate.
        eval_size: ``(W, H)`` the models see at evaluation (predictions are resized back).
        val_limit: CamVid val images used for checkpoint selection.
        train_limit: CamVid train / IDD-Lite train images used (``None``: all).
        eval_limit: evaluation images per set (``None``: all).
        tta_scales: scales of the teacher's pseudo-labelling TTA (with flip).
        latency_runs: timed forward passes per model (median reported).
        device: ``cpu`` or ``cuda``.
        threads: torch CPU threads.
    """

    resize: tuple[int, int]
    crop: tuple[int, int]
    epochs: int
    steps_per_epoch: int
    batch_size: int
    lr: float
    eval_size: tuple[int, int]
    val_limit: int | None
    train_limit: int | None
    eval_limit: int | None
    tta_scales: tuple[float, ...]
    latency_runs: int
    device: str
    threads: int
    name: str = "cpu"


_PROFILE_NAMES = ("cpu", "gpu")
#: The profiles, one column each.
_PROFILE_COLUMNS: dict[str, tuple[Any, Any]] = {
    "resize": ((256, 192), (480, 360)),
    "crop": ((160, 224), (320, 448)),
    "epochs": (3, 20),
    "steps_per_epoch": (25, 100),
    "batch_size": (6, 16),
    "lr": (5e-4, 5e-4),
    "eval_size": ((256, 192), (480, 352)),
    "val_limit": (30, None),
    "train_limit": (None, None),
    "eval_limit": (None, None),
    "tta_scales": ((1.0,), (0.75, 1.0, 1.25, 1.5)),
    "latency_runs": (5, 10),
    "device": ("cpu", "cuda"),
    "threads": (2, 4),
}
PROFILES: dict[str, Profile] = {
    name: Profile(name=name, **{key: column[i] for key, column in _PROFILE_COLUMNS.items()})
    for i, name in enumerate(_PROFILE_NAMES)
}
#: ``--smoke``: these sizes over the chosen profile.
SMOKE: dict[str, Any] = {
    "epochs": 1,
    "steps_per_epoch": 2,
    "batch_size": 2,
    "val_limit": 2,
    "train_limit": 4,
    "eval_limit": 3,
    "latency_runs": 1,
}

ARMS: dict[str, dict[str, float]] = {
    "distilled": {
        "ce_source": 1.0,
        "ce_source_aux": 0.0,
        "kd_final": 1.0,
        "kd_aux": 0.0,
        "feat": 0.5,
        "ce_pseudo": 1.0,
    },
    "no_distill": {
        "ce_source": 1.0,
        "ce_source_aux": 0.0,
        "kd_final": 0.0,
        "kd_aux": 0.0,
        "feat": 0.0,
        "ce_pseudo": 1.0,
    },
}


@dataclass(frozen=True)
class Teacher:
    """The frozen teacher of both arms (it also makes every pseudo-label).

    Attributes:
        path: a published weights file or a labelbridge checkpoint of the Cityscapes
            taxonomy (e.g. a U2 student's ``final.ckpt``).
        label: its name in the table, the variant and the run folders.
        digest: first 8 hex digits of the file's SHA-256, or ``None`` for the default
            (published s=2.0) teacher, whose run folders predate this option.
    """

    path: Path
    label: str
    digest: str | None

    @classmethod
    def from_file(cls, path: Path, label: str | None, *, default: bool) -> Teacher:
        digest = None if default else hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        return cls(path=path, label=label or ("s=2.0" if default else path.stem), digest=digest)

    @property
    def pseudo_folder(self) -> str:
        return "pseudo" if self.digest is None else f"pseudo_teacher_{self.digest}"

    def source_labels(self, work: Path) -> Path:
        """The folder of this teacher's CamVid train pseudo-labels."""
        return work / self.pseudo_folder / "camvid_train"


# ---------------------------------------------------------------------------- steps
def make_source_pseudo_labels(prof: Profile, work: Path, data: Path, teacher: Teacher) -> Path:
    """CamVid train pseudo-labels (Cityscapes ids) from the teacher with CamVid priors;
    one folder per teacher file (``pseudo`` for the published one)."""
    from labelbridge.config.pseudo import PseudoLabelConfig
    from labelbridge.pseudo.run import run_pseudo_label

    cfg = PseudoLabelConfig.model_validate(
        {
            "teacher": {"checkpoint": str(teacher.path)},
            "datasets": [
                {
                    "name": "camvid_train",
                    "reader": "camvid",
                    "root": str(data / "camvid"),
                    "split": "train",
                    "ontology": "camvid11_to_cityscapes",
                    "limit": prof.train_limit,
                }
            ],
            "tta": {"flip": True, "scales": list(prof.tta_scales)},
            "priors": True,
            "outputs": {"previews": 0},
            "output": str(work / teacher.pseudo_folder),
            "device": prof.device,
            "batch_size": 4,
            "threads": prof.threads if prof.device == "cpu" else None,
        }
    )
    t0 = time.perf_counter()
    run_pseudo_label(cfg)
    log.info("pseudo-labels of CamVid train in %.0f s", time.perf_counter() - t0)
    return teacher.source_labels(work)


def distill_config(
    prof: Profile,
    *,
    arm: str,
    losses: dict[str, float],
    seed: int,
    student_s: float,
    pseudo: Path,
    work: Path,
    data: Path,
    weights: Path,
    teacher: Teacher,
    temperature: float = 2.0,
    kd_priors: bool = True,
    distill_on: str = "both",
    kd_source_agree: bool = False,
    teacher_scale: float = 1.0,
    target_unlabelled: bool = False,
):
    from labelbridge.config.distill import DistillConfig

    # the run folder names every setting that changes the result, so that a changed
    # setting never resumes (and silently reuses) another setting's finished run
    kd = losses.get("kd_final", 0) > 0 or losses.get("kd_aux", 0) > 0
    default = PROFILES[prof.name]
    schedule = {"epochs": prof.epochs, "steps_per_epoch": prof.steps_per_epoch}
    settings = json.dumps(
        {
            "losses": losses,
            **(
                schedule
                if (default.epochs, default.steps_per_epoch) != (prof.epochs, prof.steps_per_epoch)
                else {}
            ),
            **({"T": temperature, "kd_priors": kd_priors} if kd else {}),
            **({"distill_on": distill_on} if distill_on != "both" else {}),
            **({"kd_source_agree": True} if kd_source_agree else {}),
            **({"teacher_scale": teacher_scale} if teacher_scale != 1.0 else {}),
            **({"teacher": teacher.digest} if teacher.digest is not None else {}),
            **({"target_unlabelled": True} if target_unlabelled else {}),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(settings.encode()).hexdigest()[:8]

    return DistillConfig.model_validate(
        {
            "taxonomy": "cityscapes",
            "teacher": {"checkpoint": str(teacher.path), "input_scale": teacher_scale},
            "student": {
                "spec": f"espnetv2:s={student_s},background=true",
                "weights": str(weights / f"espnetv2_s_{student_s}_city_1024x512.pth"),
            },
            "source": [
                {
                    "reader": "camvid",
                    "root": str(data / "camvid"),
                    "split": "train",
                    "labels": {"pseudo": str(pseudo)},
                    "limit": prof.train_limit,
                }
            ],
            "target": [
                {
                    "reader": "idd_lite",
                    "root": str(data / "idd_lite"),
                    "split": "train",
                    # without an ontology the split's labels are not read: plain argmax
                    "ontology": None if target_unlabelled else "idd_level1_to_cityscapes",
                    "limit": prof.train_limit,
                }
            ],
            "val": [
                {
                    "reader": "camvid",
                    "root": str(data / "camvid"),
                    "split": "val",
                    "ontology": "camvid11_to_cityscapes",
                    "label": "camvid_val",
                    "limit": prof.val_limit,
                }
            ],
            "losses": losses,
            "temperature": temperature,
            "kd_priors": kd_priors,
            "distill_on": distill_on,
            "kd_source_agree": kd_source_agree,
            "optimizer": {"name": "adamw", "lr": prof.lr, "weight_decay": 0.01},
            "schedule": {
                "name": "poly",
                "power": 0.9,
                "warmup_steps": min(20, prof.steps_per_epoch),
            },
            "batch_size": prof.batch_size,
            "val_batch_size": 4,
            "epochs": prof.epochs,
            "steps_per_epoch": prof.steps_per_epoch,
            "num_workers": 2,
            "seed": seed,
            "resize": list(prof.resize),
            "augment": {"scale_range": [0.75, 1.25], "crop": list(prof.crop), "hflip": True},
            "early_stopping": {"enabled": False},
            "trainer": {
                "accelerator": "gpu" if prof.device == "cuda" else "cpu",
                "devices": 1,
                "num_sanity_val_steps": 0,
                "enable_progress_bar": False,
                "log_every_n_steps": 10,
            },
            "output": str(work / "runs" / f"{arm}_s{student_s}_seed{seed}_{digest}"),
        }
    )


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (arm, seed) and score it; module-level so that worker processes can run
    it. ``job``: ``distill_config`` keyword arguments plus ``"prof"``."""
    from labelbridge.distill import run_distillation
    from labelbridge.models import load_checkpoint

    prof: Profile = job["prof"]
    torch.set_num_threads(prof.threads)
    if not logging.getLogger().handlers:  # a spawned worker
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )
    t0 = time.perf_counter()
    result = run_distillation(distill_config(**job))
    student = load_checkpoint(result.final_checkpoint).model
    res = evaluate(student, prof, job["data"])
    # the run's own validation set (CamVid val): what a user selects variants on
    res["camvid_val"] = 100.0 * float(result.metrics["camvid_val"]["mIoU"])
    log.info("%s seed %d: %s (%.0f s)", job["arm"], job["seed"], res, time.perf_counter() - t0)
    return {"scores": res, "final": str(result.final_checkpoint)}


def evaluate(model: torch.nn.Module, prof: Profile, data: Path) -> dict[str, float]:
    """mIoU (in %) on CamVid test and IDD-Lite val, predictions projected."""
    from labelbridge.evaluation import evaluate_on_sets
    from labelbridge.taxonomy import load_taxonomy

    miou, _ = evaluate_on_sets(
        model,
        load_taxonomy("cityscapes"),
        cityscapes_eval_sets(data, limit=prof.eval_limit),
        input_size=prof.eval_size,
        batch_size=8,
        device=prof.device,
    )
    return {key: math.nan if value is None else 100.0 * value for key, value in miou.items()}


def cpu_latency(model: torch.nn.Module, runs: int) -> float:
    """Median seconds of one ``(1, 3, 512, 1024)`` forward pass on the CPU."""
    model = model.to("cpu").eval()
    x = torch.rand(1, 3, LATENCY_SIZE[1], LATENCY_SIZE[0])
    times = []
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _shown(path: Path) -> str:
    """``path`` relative to the project root where it lies inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def difference_line(per_arm: dict[str, dict[str, list[float]]], seeds: list[int]) -> str:
    """The distilled arm minus ``no_distill`` on both sets: mean difference and the
    per-seed differences (same seed, same data order)."""
    distilled = next(a for a in per_arm if a != "no_distill")
    parts = []
    for key, title in (("camvid_test", "CamVid test"), ("idd_val", "IDD-Lite val")):
        a, b = per_arm[distilled][key], per_arm["no_distill"][key]
        diffs = [x - y for x, y in zip(a, b, strict=True)]
        parts.append(
            f"{title} {statistics.mean(a) - statistics.mean(b):+.1f} "
            f"(per seed {', '.join(f'{d:+.1f}' for d in diffs)})"
        )
    return (
        f"Distilled ({distilled}) minus no_distill, mean over seeds {seeds}: "
        + "; ".join(parts)
        + "."
    )


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program(__file__),
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes to check the plumbing; no results written"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--kd", type=float, default=None, help="weight of the final-output KL term (distilled arm)"
    )
    parser.add_argument(
        "--feat",
        type=float,
        default=None,
        help="weight of the feature-matching term (distilled arm)",
    )
    parser.add_argument(
        "--temperature", type=float, default=2.0, help="KD temperature T (distilled arm)"
    )
    parser.add_argument(
        "--no-kd-priors",
        action="store_true",
        help="distil the teacher's unconstrained distribution on target images too "
        "(default: restricted to the classes IDD-Lite's ground truth allows)",
    )
    parser.add_argument(
        "--distill-on",
        choices=("both", "source", "target"),
        default="both",
        help="images of the KD and feature terms (distilled arm): CamVid (source), "
        "IDD-Lite (target) or both",
    )
    parser.add_argument(
        "--kd-source-agree",
        action="store_true",
        help="KD on CamVid images only where the teacher's argmax equals the (prior-corrected) "
        "pseudo-label",
    )
    parser.add_argument(
        "--teacher-scale",
        type=float,
        default=1.0,
        help="the teacher sees training crops enlarged by this factor (both arms: it also "
        "makes the IDD-Lite pseudo-labels)",
    )
    parser.add_argument(
        "--target-unlabelled",
        action="store_true",
        help="use IDD-Lite train without its labels (both arms), as in the paper's domain "
        "adaptation: the teacher's plain argmax is the pseudo-label and the KD target is "
        "unconstrained (default: both constrained by IDD's level-1 ground truth)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="(arm, seed) runs trained at a time, one process each"
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (profile's)")
    parser.add_argument(
        "--steps-per-epoch", type=int, default=None, help="optimiser steps per epoch (profile's)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: the profile's)"
    )
    parser.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="the frozen teacher of both arms: a published weights file or a labelbridge "
        "checkpoint of the Cityscapes taxonomy, e.g. a U2 student's final.ckpt (default: "
        f"WEIGHTS/{TEACHER_FILE}); it also makes the CamVid and IDD-Lite pseudo-labels",
    )
    parser.add_argument(
        "--teacher-label",
        default=None,
        help="the teacher's name in the table and the variant (default: the file's stem)",
    )
    parser.add_argument("--student-s", type=float, choices=[0.5, 1.0], default=0.5)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK / SECTION)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )

    prof = PROFILES[args.profile]
    if args.smoke:
        prof = replace(prof, **SMOKE)
        args.seeds = args.seeds[:1]
    if args.threads is not None:
        prof = replace(prof, threads=max(1, args.threads))
    if args.epochs is not None:
        prof = replace(prof, epochs=args.epochs)
    if args.steps_per_epoch is not None:
        prof = replace(prof, steps_per_epoch=args.steps_per_epoch)
    teacher_path = args.teacher if args.teacher is not None else args.weights / TEACHER_FILE
    missing = missing_paths(
        args.data / "camvid",
        args.data / "idd_lite",
        teacher_path,
        args.weights / f"espnetv2_s_{args.student_s}_city_1024x512.pth",
    )
    if missing:
        parser.error(
            f"real data missing: {', '.join(missing)} (set --data / --weights / --teacher)"
        )
    teacher_ref = Teacher.from_file(teacher_path, args.teacher_label, default=args.teacher is None)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if prof.device == "cuda" and not torch.cuda.is_available():
        parser.error("--profile gpu needs a CUDA device")
    torch.set_num_threads(prof.threads)
    work = args.work / ("smoke" if args.smoke else args.profile)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    # a variant of the distilled arm gets its own name (run folders) and results section
    section = SECTION
    kd_priors = not args.no_kd_priors
    default = PROFILES[prof.name]
    suffixes = [
        text
        for on, text in (
            (args.temperature != 2.0, f"_T{args.temperature:g}"),
            (not kd_priors, "_unconstrained"),
            (args.distill_on != "both", f"_on_{args.distill_on}"),
            (args.kd_source_agree, "_agree"),
            (args.teacher_scale != 1.0, f"_teacher_x{args.teacher_scale:g}"),
            (teacher_ref.digest is not None, f"_teacher_{teacher_ref.label}"),
            (args.target_unlabelled, "_target_unlabelled"),
            (
                (prof.epochs, prof.steps_per_epoch) != (default.epochs, default.steps_per_epoch),
                f"_{prof.epochs}x{prof.steps_per_epoch}steps",
            ),
        )
        if on
    ]
    explicit = (args.kd, args.feat, args.epochs, args.steps_per_epoch)
    if suffixes or any(v is not None for v in explicit):
        losses = dict(ARMS["distilled"])
        losses["kd_final"] = losses["kd_final"] if args.kd is None else args.kd
        losses["feat"] = losses["feat"] if args.feat is None else args.feat
        variant = f"distilled_kd{losses['kd_final']:g}_feat{losses['feat']:g}" + "".join(suffixes)
        del ARMS["distilled"]
        ARMS[variant] = losses
        section = f"{SECTION}_{variant}"

    # the two arms, several seeds: one job per (arm, seed), ``--jobs`` at a time
    jobs = [
        {
            "prof": prof,
            "arm": arm,
            "losses": losses,
            "seed": seed,
            "student_s": args.student_s,
            "pseudo": teacher_ref.source_labels(work),
            "work": work,
            "data": args.data,
            "weights": args.weights,
            "temperature": args.temperature,
            "kd_priors": kd_priors,
            "distill_on": args.distill_on if arm != "no_distill" else "both",
            "kd_source_agree": args.kd_source_agree and arm != "no_distill",
            "teacher_scale": args.teacher_scale,
            "teacher": teacher_ref,
            "target_unlabelled": args.target_unlabelled,
        }
        for arm, losses in ARMS.items()
        for seed in args.seeds
    ]
    # every run's config is validated before any work (e.g. --teacher-scale 0)
    from pydantic import ValidationError

    try:
        for job in jobs:
            distill_config(**job)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        parser.error(f"invalid run settings: {fields}")

    from labelbridge.errors import CheckpointError
    from labelbridge.models import load_checkpoint

    # an unreadable teacher, or one of another taxonomy (the pseudo-labeller checks it
    # against the CamVid mapping before any work), is a usage error
    try:
        teacher = load_checkpoint(teacher_path).model
        make_source_pseudo_labels(prof, work, args.data, teacher_ref)
    except CheckpointError as exc:
        parser.error(f"--teacher: {exc}")

    # references: teacher (zero-shot when it is the published one) and the initial compact
    # model, zero-shot
    init = load_checkpoint(args.weights / f"espnetv2_s_{args.student_s}_city_1024x512.pth").model
    rows: list[dict[str, Any]] = []
    for name, model in (
        (
            "teacher s=2.0 (zero-shot)"
            if teacher_ref.digest is None
            else f"teacher {teacher_ref.label}",
            teacher,
        ),
        (f"compact s={args.student_s} init (zero-shot)", init),
    ):
        rows.append(
            {
                "model": name,
                **{k: f"{v:.1f}" for k, v in evaluate(model, prof, args.data).items()},
                "params": n_params(model),
                "latency": cpu_latency(model, prof.latency_runs),
            }
        )

    outcomes = run_jobs(run_job, jobs, args.jobs)
    per_arm: dict[str, dict[str, list[float]]] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        scores = per_arm.setdefault(
            job["arm"], {"camvid_test": [], "idd_val": [], "camvid_val": []}
        )
        for k, v in outcome["scores"].items():
            scores[k].append(v)
    student = load_checkpoint(outcomes[0]["final"]).model
    student_stats = {
        "params": n_params(student),
        "latency": cpu_latency(student, prof.latency_runs),
    }
    for arm, scores in per_arm.items():
        rows.append(
            {
                "model": f"compact s={args.student_s}, {arm}",
                **{k: _mean_sd(v) for k, v in scores.items()},
                **student_stats,
            }
        )

    elapsed = time.perf_counter() - t_start
    header = (
        "| model | CamVid test mIoU | IDD-Lite val mIoU | CamVid val mIoU (selection) | params "
        "| CPU latency 1024x512 |\n|---|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {r['model']} | {r['camvid_test']} | {r['idd_val']} | {r.get('camvid_val', '-')} "
        f"| {r['params'] / 1e6:.2f} M | {1000 * r['latency']:.0f} ms |\n"
        for r in rows
    )
    table += "\n" + difference_line(per_arm, args.seeds) + "\n"
    settings = (
        f"Profile `{args.profile}`{' (smoke)' if args.smoke else ''}: seeds {args.seeds}; training images resized to "
        f"{prof.resize[0]}x{prof.resize[1]}, crops {prof.crop[1]}x{prof.crop[0]}, {prof.epochs}x{prof.steps_per_epoch} steps "
        f"of {prof.batch_size} source + {prof.batch_size} target images; evaluation at {prof.eval_size[0]}x{prof.eval_size[1]}; "
        + (
            ""
            if teacher_ref.digest is None
            else f"teacher `{teacher_ref.label}` = `{_shown(teacher_ref.path)}` (sha256 {teacher_ref.digest}…), "
            "which also made every pseudo-label of both arms; "
        )
        + f"source pseudo-labels with TTA scales {list(prof.tta_scales)} + flip and CamVid priors; mIoU in % "
        f"(mean ± sd over seeds); arms: {'; '.join(f'{k} = {v}' for k, v in ARMS.items())}, "
        f"T = {args.temperature:g}; "
        + (
            "IDD-Lite train used **without its labels** (`--target-unlabelled`, both arms): "
            "its pseudo-labels are the teacher's plain argmax and its KD targets the teacher's "
            "unconstrained distribution; "
            if args.target_unlabelled
            else "IDD-Lite pseudo-labels constrained by its level-1 ground truth; KD on "
            "IDD-Lite images "
            + (
                "restricted to the classes its ground truth allows (`kd_priors`); "
                if kd_priors
                else "against the teacher's unconstrained distribution (`--no-kd-priors`); "
            )
        )
        + "KD and feature terms on "
        + {"both": "CamVid and IDD-Lite", "source": "CamVid only", "target": "IDD-Lite only"}[
            args.distill_on
        ]
        + " images"
        + (
            " (on CamVid only where the teacher's argmax equals the pseudo-label). "
            if args.kd_source_agree
            else ". "
        )
        + (
            f"The teacher sees the training crops enlarged {args.teacher_scale:g}x (both arms; "
            "its logits resized back). "
            if args.teacher_scale != 1.0
            else ""
        )
        + f"CPU latency: median of {prof.latency_runs} single-image forward passes with {prof.threads} threads. "
        f"Wall time {elapsed / 60:.1f} min."
    )
    print(table)
    print(settings)
    (work / "summary.json").write_text(
        json.dumps(
            {"rows": rows, "per_arm": per_arm, "profile": asdict(prof)}, indent=2, default=str
        )
    )
    if not args.smoke:
        command = command_line(__file__, argv)
        variant = section[len(SECTION) + 1 :] if section != SECTION else "default"
        heading = (
            f"## Distillation into a compact ESPNetv2 s={args.student_s} (issue 7), "
            f"{args.profile} profile, variant `{variant}`\n\n"
        )
        write_section(
            section, heading + run_header(command) + "\n" + table + "\n" + settings + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
