"""Profiles and the command line of the real-data benchmarks U1 (``u1_camvid_idd``) and
U2 (``u2_cityscapes_teacher``): the sizes of a run, the training settings every run of
theirs shares, the options that choose and override them, the run's work folder, and the
set-up of a benchmark (or worker) process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.common.paths import BENCHMARKS, DEFAULT_WORK


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


#: U1's profiles (CamVid teacher trained here, IDD-Lite extra), one column each.
_U1_NAMES = ("cpu", "gpu", "smoke")
_U1_COLUMNS: dict[str, tuple[Any, Any, Any]] = {
    "resize": ((320, 240), (480, 360), (64, 48)),
    "crop": ((192, 256), (320, 448), (32, 64)),
    "scale_range": ((0.75, 1.5), (0.5, 2.0), (1.0, 1.0)),
    "batch_size": (8, 16, 2),
    "epochs": (3, 8, 1),
    "steps_per_epoch": (15, 25, 1),
    "finetune_epochs": (1, 2, 1),
    # cpu and gpu: low rates, the mapped classifier starts close to a good model
    "lr": (1e-3, 1e-3, 1e-3),
    "encoder_lr": (5e-4, 5e-4, 1e-3),
    "val_limit": (40, None, 2),
    "source_limit": (None, None, 4),
    "extra_limit": (150, None, 3),
    "camvid_extra_limit": (None, None, 3),
    "eval_limit": (None, None, 2),
    "eval_size": ((320, 240), None, (64, 48)),
    "tta_scales": ((1.0,), (0.75, 1.0, 1.5), (1.0,)),
    "tta_flip": (True, True, False),
    "precision": ("32", "bf16-mixed", "32"),
    "accelerator": ("cpu", "gpu", "cpu"),
    "device": ("cpu", "cuda", "cpu"),
    "num_workers": (1, 3, 0),
    "threads": (2, 2, 1),
    "jobs": (1, 3, 1),
    "previews": (2, 3, 1),
    "second_iteration": (True, True, False),
    "student_epochs": (6, 16, None),
}
U1_PROFILES: dict[str, Profile] = {
    name: Profile(name=name, **{key: column[i] for key, column in _U1_COLUMNS.items()})
    for i, name in enumerate(_U1_NAMES)
}

#: Profiles of U2 (published Cityscapes teacher; CamVid + IDD-Lite extras). Students
#: start from the teacher's weights, so fewer steps are needed than in U1; U2 trains
#: students only, without a source fine-tune.
U2_PROFILES: dict[str, Profile] = {
    "cpu": replace(U1_PROFILES["cpu"], student_epochs=None, finetune_epochs=0, extra_limit=300),
    "gpu": replace(
        U1_PROFILES["gpu"],
        student_epochs=None,
        epochs=10,
        finetune_epochs=0,
        tta_scales=(0.5, 0.75, 1.0, 1.25, 1.5),
    ),
    "smoke": replace(U1_PROFILES["smoke"], finetune_epochs=0),
}


def training_settings(profile: Profile, seed: int, *, epochs: int) -> dict[str, Any]:
    """The training keys every U1 and U2 training run shares: AdamW at the profile's
    rates, a poly schedule, the profile's batch, augmentation, precision, trainer and
    image size, no early stopping; ``epochs``: its stage-1 epochs. The benchmark adds
    the model, the data, the fine-tune stage and the output."""
    return {
        "optimizer": {
            "name": "adamw",
            "lr": profile.lr,
            "encoder_lr": profile.encoder_lr,
            "weight_decay": 1e-4,
        },
        "schedule": {
            "name": "poly",
            "power": 0.9,
            "warmup_steps": min(10, profile.steps_per_epoch),
        },
        "grad_clip": 10.0,
        "precision": profile.precision,
        "batch_size": profile.batch_size,
        "val_batch_size": 4,
        "epochs": epochs,
        "steps_per_epoch": profile.steps_per_epoch,
        "num_workers": profile.num_workers,
        "seed": seed,
        "augment": {
            "scale_range": list(profile.scale_range),
            "crop": list(profile.crop),
            "hflip": True,
        },
        "early_stopping": {"enabled": False},
        "trainer": {
            "accelerator": profile.accelerator,
            "devices": 1,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
            "enable_progress_bar": False,
        },
        "resize": list(profile.resize),
    }


# --------------------------------------------------------------------------- options
def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    *,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    prog: str | None = None,
) -> argparse.Namespace:
    """The common command line of both benchmarks; ``extra`` adds a benchmark's own options,
    ``prog`` names the program in the usage line."""
    p = argparse.ArgumentParser(prog=prog, description=description)
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
        default=BENCHMARKS / "results.md",
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
