"""Shared helpers of the real-data benchmarks U1 (``u1_camvid_idd.py``) and U2
(``u2_cityscapes_teacher.py``): profiles, paths, command-line options, evaluation of a
checkpoint on the evaluation sets, seed statistics, Markdown tables, preview figures.

Both benchmarks run on the real datasets in ``../shared/data`` and the published
checkpoints in ``../shared/weights`` (never copied into the repository).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: ``$LABELBRIDGE_SHARED`` overrides where the shared data and weights live.
SHARED = Path(os.environ.get("LABELBRIDGE_SHARED", str(REPO.parent / "shared")))
DATA = SHARED / "data"
WEIGHTS = SHARED / "weights"
CAMVID_ROOT = DATA / "camvid"
IDD_ROOT = DATA / "idd_lite"
#: The published Cityscapes ESPNetv2 s=2.0 checkpoint (U2's teacher; U1's initial weights).
TEACHER_S2 = WEIGHTS / "espnetv2_s_2.0_city_1024x512.pth"
FIGURES = REPO / "benchmarks" / "figures"
DEFAULT_WORK = REPO / "benchmarks" / "_work"
#: Largest preview PNG copied into ``benchmarks/figures`` (bytes).
MAX_FIGURE_BYTES = 300_000

log = logging.getLogger("benchmarks.realdata")


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark profile (identical for every arm and seed).

    Attributes:
        name: ``cpu``, ``gpu`` or ``smoke``.
        resize: ``(W, H)`` every training and validation image is resized to.
        crop: ``(H, W)`` training crop after the random rescale.
        scale_range: random rescale factors of training augmentation.
        batch_size: training images per step.
        epochs: stage-1 epochs (teacher and students alike).
        steps_per_epoch: optimiser steps per epoch.
        finetune_epochs: epochs of the students' source fine-tune stage (0.1x LR).
        lr: decoder/head learning rate (AdamW); ``encoder_lr``: the encoder's.
        val_limit: selection-set images validated after each epoch (``None``: all).
        source_limit: source training images (``None``: all).
        extra_limit: IDD-Lite train images pseudo-labelled and trained on (``None``: all).
        camvid_extra_limit: CamVid images per split used as U2 extras (``None``: all).
        eval_limit: images per evaluation set (``None``: the whole split).
        eval_size: ``(W, H)`` the models see at evaluation (``None``: native size);
            predictions are resized back to the label's size before scoring.
        tta_scales: pseudo-labelling test-time scales; ``tta_flip``: with flip.
        precision: Lightning precision.
        accelerator: ``cpu`` or ``gpu``; ``device``: torch device of pseudo-labelling
            and evaluation.
        num_workers: data-loading processes per training run.
        threads: torch intra-op threads per process (CPU).
        jobs: seeds trained concurrently (each in its own process).
        previews: Fig. 1-style preview panels per pseudo-labelled dataset.
        second_iteration: run U1's second round.
        student_epochs: U1 students' stage-1 epochs (``None``: ``epochs``, as the
            teacher). A student samples source and extra 50/50, so twice the teacher's
            epochs give it as many source crops as the teacher saw.
    """

    name: str
    resize: tuple[int, int]
    crop: tuple[int, int]
    scale_range: tuple[float, float]
    batch_size: int
    epochs: int
    steps_per_epoch: int
    finetune_epochs: int
    lr: float
    encoder_lr: float
    val_limit: int | None
    source_limit: int | None
    extra_limit: int | None
    camvid_extra_limit: int | None
    eval_limit: int | None
    eval_size: tuple[int, int] | None
    tta_scales: tuple[float, ...]
    tta_flip: bool
    precision: str
    accelerator: str
    device: str
    num_workers: int
    threads: int
    jobs: int
    previews: int
    second_iteration: bool = True
    student_epochs: int | None = None

    @property
    def student_stage_epochs(self) -> int:
        """Stage-1 epochs of the U1 students."""
        return self.epochs if self.student_epochs is None else self.student_epochs

    def describe(self, bench: str) -> str:
        """One Markdown paragraph stating every reduction of this profile.

        Args:
            bench: ``u1`` (CamVid is the source) or ``u2`` (CamVid is an extra dataset).
        """

        def lim(v: int | None) -> str:
            return "all" if v is None else str(v)

        tta = ", ".join(f"{s:g}" for s in self.tta_scales) + (" x flip" if self.tta_flip else "")
        data = (
            f"CamVid train (source) images: {lim(self.source_limit)}"
            if bench == "u1"
            else f"CamVid images per extra split (train, val): {lim(self.camvid_extra_limit)}"
        )
        finetune = (
            f" (+ {self.finetune_epochs} source fine-tune epochs at 0.1x LR for the fine-tuned arms)"
            if bench == "u1"
            else ""
        )
        return (
            f"profile `{self.name}`: train/val images resized to {self.resize[0]}x{self.resize[1]} (WxH), "
            f"random rescale {self.scale_range[0]:g}-{self.scale_range[1]:g} + crop {self.crop[1]}x{self.crop[0]}, "
            f"batch {self.batch_size}, {self.epochs} epochs x {self.steps_per_epoch} steps"
            + (
                f" (students: {self.student_stage_epochs} epochs, half of their batches from "
                "the source, so that they see as many source crops as the teacher)"
                if bench == "u1" and self.student_stage_epochs != self.epochs
                else ""
            )
            + f"{finetune}, "
            f"AdamW lr {self.lr:g} (encoder {self.encoder_lr:g}), precision {self.precision}; model selection on "
            f"{lim(self.val_limit)} CamVid val images after each epoch; {data}; "
            f"IDD-Lite train images: {lim(self.extra_limit)}; pseudo-label TTA scales {tta}; evaluation on "
            f"{lim(self.eval_limit)} images per set at "
            f"{'native size' if self.eval_size is None else f'{self.eval_size[0]}x{self.eval_size[1]}'}."
        )


_COMMON_CPU = dict(
    resize=(320, 240),
    crop=(192, 256),
    scale_range=(0.75, 1.5),
    batch_size=8,
    lr=2e-3,
    encoder_lr=1e-3,
    val_limit=40,
    eval_limit=None,
    eval_size=(320, 240),
    tta_flip=True,
    precision="32",
    accelerator="cpu",
    device="cpu",
    num_workers=1,
    threads=2,
    jobs=1,
    previews=2,
)

#: Profiles of U1 (CamVid teacher trained here, IDD-Lite extra).
U1_PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        name="cpu",
        epochs=3,
        steps_per_epoch=15,
        finetune_epochs=1,
        source_limit=None,
        extra_limit=150,
        camvid_extra_limit=None,
        tta_scales=(1.0,),
        student_epochs=6,
        # lower than the common rates: the mapped classifier starts close to a good model
        **{**_COMMON_CPU, "lr": 1e-3, "encoder_lr": 5e-4},  # type: ignore[arg-type]
    ),
    "gpu": Profile(
        name="gpu",
        resize=(480, 360),
        crop=(320, 448),
        scale_range=(0.5, 2.0),
        batch_size=16,
        epochs=8,
        steps_per_epoch=25,
        finetune_epochs=2,
        student_epochs=16,
        lr=1e-3,
        encoder_lr=5e-4,
        val_limit=None,
        source_limit=None,
        extra_limit=None,
        camvid_extra_limit=None,
        eval_limit=None,
        eval_size=None,
        tta_scales=(0.75, 1.0, 1.5),
        tta_flip=True,
        precision="bf16-mixed",
        accelerator="gpu",
        device="cuda",
        num_workers=3,
        threads=2,
        jobs=3,
        previews=3,
    ),
    "smoke": Profile(
        name="smoke",
        resize=(64, 48),
        crop=(32, 64),
        scale_range=(1.0, 1.0),
        batch_size=2,
        epochs=1,
        steps_per_epoch=1,
        finetune_epochs=1,
        lr=1e-3,
        encoder_lr=1e-3,
        val_limit=2,
        source_limit=4,
        extra_limit=3,
        camvid_extra_limit=3,
        eval_limit=2,
        eval_size=(64, 48),
        tta_scales=(1.0,),
        tta_flip=False,
        precision="32",
        accelerator="cpu",
        device="cpu",
        num_workers=0,
        threads=1,
        jobs=1,
        previews=1,
        second_iteration=False,
    ),
}

#: Profiles of U2 (published Cityscapes teacher; CamVid + IDD-Lite extras). Students
#: start from the teacher's weights, so fewer steps are needed than in U1.
U2_PROFILES: dict[str, Profile] = {
    "cpu": replace(
        U1_PROFILES["cpu"],
        student_epochs=None,  # U2 trains students only
        epochs=3,
        steps_per_epoch=15,
        finetune_epochs=0,
        lr=1e-3,
        encoder_lr=5e-4,
        extra_limit=300,
        camvid_extra_limit=None,
    ),
    "gpu": replace(
        U1_PROFILES["gpu"],
        student_epochs=None,
        epochs=10,
        steps_per_epoch=25,
        finetune_epochs=0,
        lr=1e-3,
        encoder_lr=5e-4,
        tta_scales=(0.5, 0.75, 1.0, 1.25, 1.5),
    ),
    "smoke": replace(U1_PROFILES["smoke"], finetune_epochs=0),
}


# --------------------------------------------------------------------------- options
def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    *,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The common command line of both benchmarks; ``extra`` adds a benchmark's own options."""
    p = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(p)
    p.add_argument(
        "--profile",
        choices=("cpu", "gpu", "smoke"),
        default="cpu",
        help="sizes (see the module doc)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="same as --profile smoke: a few images, 1 step per stage",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="training seeds (default 0 1 2; smoke: 0)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=REPO / "benchmarks" / "results.md",
        help="results Markdown file",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="working folder (default benchmarks/_work/<bench>)",
    )
    p.add_argument(
        "--jobs", type=int, default=None, help="seeds trained concurrently (default: the profile's)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per process (default: the profile's)",
    )
    p.add_argument(
        "--no-figures", action="store_true", help="do not copy preview panels to benchmarks/figures"
    )
    over = p.add_argument_group("profile overrides (for a busy machine; stated in the results)")
    over.add_argument("--epochs", type=int, default=None, help="stage-1 epochs")
    over.add_argument("--steps-per-epoch", type=int, default=None, help="optimiser steps per epoch")
    over.add_argument("--finetune-epochs", type=int, default=None, help="fine-tune epochs (U1)")
    over.add_argument(
        "--student-epochs", type=int, default=None, help="stage-1 epochs of the U1 students"
    )
    over.add_argument("--val-limit", type=int, default=None, help="CamVid val images for selection")
    over.add_argument("--extra-limit", type=int, default=None, help="IDD-Lite train images used")
    over.add_argument(
        "--camvid-extra-limit", type=int, default=None, help="CamVid images per split (U2)"
    )
    over.add_argument("--eval-limit", type=int, default=None, help="images per evaluation set")
    over.add_argument(
        "--tta-scales", type=float, nargs="+", default=None, help="pseudo-label TTA scales"
    )
    over.add_argument("--no-tta-flip", action="store_true", help="pseudo-label TTA without flip")
    over.add_argument("--no-second-iteration", action="store_true", help="skip U1's second round")
    p.add_argument(
        "--section-suffix",
        default=None,
        help="write section <id>-<suffix> (and JSON <name>_<suffix>.json): a variant kept "
        "beside the main run's section",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    args = p.parse_args(argv)
    if args.smoke:
        args.profile = "smoke"
    if args.seeds is None:
        args.seeds = [0] if args.profile == "smoke" else [0, 1, 2]
    return args


def select_profile(profiles: dict[str, Profile], args: argparse.Namespace) -> Profile:
    """The profile named on the command line with ``--jobs`` / ``--threads`` applied."""
    prof = profiles[args.profile]
    if args.jobs is not None:
        prof = replace(prof, jobs=max(1, args.jobs))
    if args.threads is not None:
        prof = replace(prof, threads=max(1, args.threads))
    for key in (
        "epochs",
        "steps_per_epoch",
        "finetune_epochs",
        "student_epochs",
        "val_limit",
        "extra_limit",
        "camvid_extra_limit",
        "eval_limit",
    ):
        value = getattr(args, key)
        if value is not None:
            prof = replace(prof, **{key: value})
    if args.tta_scales is not None:
        prof = replace(prof, tta_scales=tuple(args.tta_scales))
    if args.no_tta_flip:
        prof = replace(prof, tta_flip=False)
    if args.no_second_iteration:
        prof = replace(prof, second_iteration=False)
    return prof


#: Profile fields that do not change any result (how, not what, is computed).
_NON_RESULT_FIELDS = ("threads", "jobs", "num_workers", "previews")


def work_dir(args: argparse.Namespace, bench: str, profile: Profile) -> Path:
    """``--work-dir``, else ``benchmarks/_work/<bench>_<profile>_<hash of the result-relevant
    settings>``, so that a changed profile never resumes another profile's runs."""
    if args.work_dir is not None:
        return Path(args.work_dir).resolve()
    data = {k: v for k, v in asdict(profile).items() if k not in _NON_RESULT_FIELDS}
    if data["student_epochs"] in (None, data["epochs"]):  # the same runs either way
        del data["student_epochs"]
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]
    return (DEFAULT_WORK / f"{bench}_{profile.name}_{digest}").resolve()


def eval_tag(profile: Profile) -> str:
    """Cache-file tag of the evaluation settings (limit and input size)."""
    size = (
        "native" if profile.eval_size is None else f"{profile.eval_size[0]}x{profile.eval_size[1]}"
    )
    return f"{'all' if profile.eval_limit is None else profile.eval_limit}_{size}"


def setup_process(profile: Profile, *, verbose: bool) -> None:
    """Logging and torch thread count of a benchmark (or worker) process."""
    import torch

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)
    torch.set_num_threads(profile.threads)


def require_shared_data() -> None:
    """Exit with a clear message when the shared datasets or weights are absent."""
    missing = [p for p in (CAMVID_ROOT, IDD_ROOT, TEACHER_S2) if not p.exists()]
    if missing:
        sys.exit(
            f"real data missing: {', '.join(map(str, missing))} (the benchmarks need ../shared)"
        )


def command_line() -> str:
    """The command as typed (script path relative to the repository)."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(REPO))
    except ValueError:
        shown = str(script)
    return " ".join(["python", shown, *sys.argv[1:]])


def load_average() -> str:
    """The 1-minute load average (the shared CPU machine is often busy)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


# --------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class EvalSet:
    """One evaluation set of the final table.

    Attributes:
        label: report name (``camvid_test``, ``idd_val``).
        reader: reader registry name; ``root``: dataset root; ``split``: split.
        ontology: mapping from the set's taxonomy (extra side) to the model's (source
            side), or ``None`` when the set is in the model's taxonomy.
    """

    label: str
    reader: str
    root: str
    split: str
    ontology: str | None


def evaluate_checkpoint_file(
    checkpoint: str | Path, sets: Sequence[EvalSet], profile: Profile
) -> dict[str, dict[str, Any]]:
    """mIoU and per-class IoU of one checkpoint on every set.

    Returns:
        ``{set label: {"mIoU": float in [0, 1] or None, "per_class_iou": {class: IoU or None}}}``.
    """
    from labelbridge.models import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    return evaluate_loaded(loaded.model, loaded.taxonomy, sets, profile)


def evaluate_loaded(
    model: Any, taxonomy: Any, sets: Sequence[EvalSet], profile: Profile
) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_checkpoint_file` for a model already in memory."""
    import torch

    from labelbridge.data import create_dataset
    from labelbridge.evaluation import evaluate_model
    from labelbridge.taxonomy import load_ontology

    out: dict[str, dict[str, Any]] = {}
    with torch.inference_mode():
        for s in sets:
            dataset = create_dataset(s.reader, s.root, s.split)
            metrics = evaluate_model(
                model,
                dataset,
                model_taxonomy=taxonomy,
                ontology=load_ontology(s.ontology) if s.ontology else None,
                input_size=profile.eval_size,
                batch_size=4,
                device=profile.device,
                limit=profile.eval_limit,
                progress=False,
            )
            value = float(metrics.miou)
            out[s.label] = {
                "mIoU": None if math.isnan(value) else value,
                "per_class_iou": metrics.to_dict()["per_class_iou"],
            }
    return out


def results_targets(
    args: argparse.Namespace, profile: Profile, section: str, json_name: str
) -> tuple[str, Path]:
    """The results.md section id and the JSON path of a run: ``--section-suffix`` makes
    a variant section ``<section>-<suffix>`` and ``<json>_<suffix>.json``; the smoke
    profile writes ``<json>_smoke.json``."""
    if profile.name == "smoke":
        json_name = json_name.replace(".json", "_smoke.json")
    if args.section_suffix:
        section = f"{section}-{args.section_suffix}"
        json_name = json_name.replace(".json", f"_{args.section_suffix}.json")
    return section, args.results.parent / json_name


def cached_json(path: Path, compute: Callable[[], Any]) -> Any:
    """``compute()``, stored in ``path`` and read back from there on later runs."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    value = compute()
    write_json(path, value)
    return value


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_seed_jobs(fn: Callable[[int], Any], seeds: Sequence[int], jobs: int) -> list[Any]:
    """``fn(seed)`` for every seed, ``jobs`` at a time in spawned processes (``jobs == 1``:
    in this process). ``fn`` must be a module-level function (picklable)."""
    if jobs <= 1 or len(seeds) <= 1:
        return [fn(s) for s in seeds]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(
        max_workers=min(jobs, len(seeds)), mp_context=mp.get_context("spawn")
    ) as pool:
        return list(pool.map(fn, seeds))


# --------------------------------------------------------------------------- statistics
@dataclass
class Summary:
    """Mean and range of one number over seeds (values in percent)."""

    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else math.nan

    def cell(self) -> str:
        """``mean (min-max)`` with one decimal, or the single value."""
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return f"{self.values[0]:.1f}"
        return f"{self.mean:.1f} ({self.lo:.1f}–{self.hi:.1f})"

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "mean": self.mean, "min": self.lo, "max": self.hi}


def pct(value: float | None) -> float | None:
    """``[0, 1]`` -> percent, ``None`` kept."""
    return None if value is None else 100.0 * value


def summarize(results: dict[str, list[dict[str, Any]]], set_label: str) -> dict[str, Summary]:
    """``{arm: [per-seed eval dict]}`` -> ``{arm: Summary of mIoU (%) on set_label}``."""
    out = {}
    for arm, evals in results.items():
        vals = [pct(e[set_label]["mIoU"]) for e in evals if e[set_label]["mIoU"] is not None]
        out[arm] = Summary([v for v in vals if v is not None])
    return out


def miou_table(
    results: dict[str, list[dict[str, Any]]], sets: Sequence[str], titles: dict[str, str]
) -> str:
    """Markdown: one row per arm, mIoU mean (min-max) per set, then the per-seed values."""
    lines = [
        "| arm | seeds | " + " | ".join(f"{s} mIoU" for s in sets) + " | per-seed values |",
        "|---|---:|" + "---:|" * len(sets) + "---|",
    ]
    for arm, evals in results.items():
        cells = [summarize({arm: evals}, s)[arm].cell() for s in sets]
        per_seed = "; ".join(
            f"{s}: "
            + ", ".join(
                "n/a" if e[s]["mIoU"] is None else f"{100 * e[s]['mIoU']:.1f}" for e in evals
            )
            for s in sets
        )
        lines.append(
            f"| {titles.get(arm, arm)} | {len(evals)} | " + " | ".join(cells) + f" | {per_seed} |"
        )
    return "\n".join(lines)


def per_class_table(
    results: dict[str, list[dict[str, Any]]], set_label: str, titles: dict[str, str]
) -> str:
    """Markdown: per-class IoU (%) on one set, mean over seeds, one row per arm."""
    first = next(iter(results.values()))[0][set_label]["per_class_iou"]
    classes = list(first)
    lines = ["| arm | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
    for arm, evals in results.items():
        cells = []
        for c in classes:
            vals = [e[set_label]["per_class_iou"].get(c) for e in evals]
            vals = [v for v in vals if v is not None]
            cells.append(f"{100 * statistics.fmean(vals):.1f}" if vals else "n/a")
        lines.append(f"| {titles.get(arm, arm)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pseudo_report_summary(folder: Path) -> dict[str, Any] | None:
    """Key numbers of a pseudo-label ``report.json`` (``None`` when absent)."""
    path = folder / "report.json"
    if not path.is_file():
        return None
    rep = json.loads(path.read_text(encoding="utf-8"))
    agree = rep.get("agreement_with_extra_gt", {})
    return {
        "images": rep["images"]["finished"],
        "changed_by_priors": rep["changed_by_priors"]["share_of_labelled"],
        "ignore_share": rep["pixels"]["ignore_share"],
        "mean_confidence": rep.get("mean_confidence"),
        "agreement_pseudo": agree.get("pseudo_labels"),
        "agreement_teacher": agree.get("teacher"),
    }


def pseudo_table(stats: dict[str, dict[str, Any] | None]) -> str:
    """Markdown table of :func:`pseudo_report_summary` rows keyed ``arm / dataset``."""

    def p(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines = [
        "| pseudo-labels | images | argmax changed by priors | ignore | mean confidence "
        "| pseudo-label / teacher consistent with the extra GT |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, s in stats.items():
        if s is None:
            lines.append(f"| {name} | n/a | n/a | n/a | n/a | n/a |")
            continue
        conf = "n/a" if s["mean_confidence"] is None else f"{s['mean_confidence']:.3f}"
        lines.append(
            f"| {name} | {s['images']} | {p(s['changed_by_priors'])} | {p(s['ignore_share'])} | {conf} "
            f"| {p(s['agreement_pseudo'])} / {p(s['agreement_teacher'])} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures


def previews_note(figures: Sequence[Path]) -> list[str]:
    """Markdown lines naming the preview panels the run wrote (not linked: they show
    dataset images whose licences forbid redistribution, so they are not committed)."""
    if not figures:
        return []
    names = ", ".join(f"`{f.name}`" for f in figures)
    return [
        "### Preview panels (Fig. 1 style)",
        "",
        "Panels (image | extra ground truth | teacher | pseudo-label) were written to "
        f"`benchmarks/figures/` on the machine that ran this: {names}. They are not "
        "committed, because they show dataset images whose licences forbid "
        "redistribution.",
        "",
    ]


def copy_previews(folder: Path, prefix: str, count: int, dest: Path = FIGURES) -> list[Path]:
    """Copy up to ``count`` preview panels of a pseudo-label folder to ``dest`` as
    ``<prefix>_<n>.png``, shrinking any over :data:`MAX_FIGURE_BYTES`."""
    from PIL import Image

    sources = sorted((folder / "previews").rglob("*.png"))[:count]
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for n, src in enumerate(sources):
        target = dest / f"{prefix}_{n}.png"
        shutil.copyfile(src, target)
        scale = 1.0
        while target.stat().st_size > MAX_FIGURE_BYTES and scale > 0.2:
            scale *= 0.75
            with Image.open(src) as im:
                small = im.convert("RGB").resize(
                    (max(1, int(im.width * scale)), max(1, int(im.height * scale)))
                )
                small = small.quantize(colors=128)
                small.save(target, optimize=True)
        written.append(target)
    return written


def elapsed(start: float) -> str:
    """Wall time since ``start`` as ``12.3 min``."""
    return f"{(time.time() - start) / 60:.1f} min"


def profile_dict(profile: Profile) -> dict[str, Any]:
    """The profile as JSON-able data."""
    return asdict(profile)
