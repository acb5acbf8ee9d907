"""Speed against the anchors a user compares with, each a ratio of two sides run
interleaved in this one process (order flipped every pair, medians of ``--pairs``):

* **eval-files**: ``evaluate_prediction_folder`` (label-id PNGs, threads) vs the official
  ``cityscapesscripts`` evaluation on the same real CamVid-derived files (same mIoU to
  1e-9); **eval-memory**: label-id maps already decoded, ours (``joint_histogram`` +
  ``fold_histogram`` per pair in threads: conversion and counting in one pass) vs the
  official path with ``Image.open`` served from memory;
* **pseudo**: ``PseudoLabeler.run_dataset`` on real CamVid images with the default TTA
  (start-up excluded) vs the pure forward passes of the same model at the same input
  sizes, replayed without any pipeline around them;
* **forward**: our ESPNetv2 s=2.0 vs the authors' EdgeNets code (``--edgenets DIR``,
  a local copy of github.com/sacmehta/EdgeNets, never committed; skipped with a message
  when absent), the same published weights, identical input sizes (multiples of 32: the
  authors' code needs them), outputs compared;
* **train**: seconds per step of ``labelbridge train`` (``run_training``) vs a minimal
  hand-written PyTorch loop with the same model, batch, resize, crop, optimiser and data
  files, vs one fixed in-memory batch (the compute limit);
* **rss**: peak resident memory of pseudo-labelling and of evaluation at two sizes of
  work, each in a fresh process.

Writes the section ``speed`` of ``benchmarks/results.md`` (``--no-write``: print only)
and ``benchmarks/results_speed.json`` (the measured per-image and per-step costs that
``docs/scaling.md`` is computed from); prints the ratios last.

Run:  python -m benchmarks.speed [--parts eval,pseudo,forward,train,rss] [--pairs 3]
      [--edgenets DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.common.cityscapes_layout import (
    decoded_images,
    official_in_memory,
    official_scores,
    write_layout,
)
from benchmarks.common.paths import BENCHMARKS, CAMVID_ROOT, TEACHER_S2, require_shared_data
from benchmarks.common.results import (
    command_line,
    hardware,
    program,
    run_header,
    write_section,
)
from benchmarks.common.timing import StepTimes, interleaved, load_average, median

log = logging.getLogger("benchmarks.speed")

SECTION = "speed"
JSON_OUT = BENCHMARKS / "results_speed.json"
PARTS = ("eval", "pseudo", "forward", "train", "rss")
TOLERANCE = 1e-9
MAPPING = "camvid11_to_cityscapes"
#: Input sizes (H, W) of the forward comparison: the authors' code needs multiples of 32.
FORWARD_SIZES = ((192, 256), (352, 480), (704, 960))
#: Training settings shared by the three training sides (the U1 cpu profile's).
TRAIN = {"spec": "espnetv2:s=2.0", "resize": (320, 240), "crop": (192, 256), "batch": 8}


# ------------------------------------------------------------------------ evaluation
def _cityscapes_folder(root: Path, num_images: int) -> tuple[Any, Path, list[str], list[str]]:
    """Real CamVid test maps as a Cityscapes val split (``leftImg8bit`` links to the label
    files: the reader lists images, evaluation reads only labels) and a prediction folder
    ``<pred>/<sample key>.png`` linking the perturbed predictions."""
    from labelbridge.data import create_dataset

    labels = sorted((CAMVID_ROOT / "testannot").glob("*.png"))[:num_images]
    preds, gts = write_layout(labels, root)
    img_dir = root / "leftImg8bit" / "val" / "camvid"
    img_dir.mkdir(parents=True)
    for g in gts:
        stem = Path(g).name.removesuffix("_gtFine_labelIds.png")
        (img_dir / f"{stem}_leftImg8bit.png").symlink_to(g)
    dataset = create_dataset("cityscapes", root, "val")
    pred_dir = root / "pred"
    by_stem = {Path(p).name.removesuffix("_pred.png"): p for p in preds}
    for pair in dataset.pairs:
        target = pred_dir / f"{pair.key}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(by_stem[Path(pair.label).name.removesuffix("_gtFine_labelIds.png")])
    return dataset, pred_dir, preds, gts


def _agree(ours: Any, theirs: dict) -> float:
    """Largest |IoU difference| over the classes and the mIoU; raises past TOLERANCE."""
    worst = abs(ours.miou - theirs["averageScoreClasses"])
    for name, iou in ours.iou_by_name().items():
        ref = float(theirs["classScores"][name])
        if math.isnan(ref) or math.isnan(iou):
            assert math.isnan(ref) and math.isnan(iou), f"{name}: ours {iou}, official {ref}"
        else:
            worst = max(worst, abs(iou - ref))
    assert worst <= TOLERANCE, f"evaluators disagree by {worst}"
    return worst


def part_eval(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from labelbridge.constants import IGNORE_INDEX
    from labelbridge.evaluation import ConfusionMatrix
    from labelbridge.evaluation.confusion import fold_histogram, joint_histogram
    from labelbridge.evaluation.model_eval import evaluate_prediction_folder
    from labelbridge.taxonomy import load_taxonomy
    from labelbridge.threads import default_workers, ordered_map

    cs = load_taxonomy("cityscapes")
    dataset, pred_dir, preds, gts = _cityscapes_folder(work / "eval", args.eval_images)
    n = len(dataset)
    out: dict[str, Any] = {}

    def ours_files() -> None:
        out["ours_files"] = evaluate_prediction_folder(
            pred_dir, dataset, pred_taxonomy=cs, pred_ids="label", progress=False
        )

    def official_files() -> None:
        out["official_files"] = official_scores(preds, gts)

    files = interleaved({"official": official_files, "labelbridge": ours_files}, args.pairs)
    diff_files = _agree(out["ours_files"], out["official_files"])

    decoded = decoded_images(preds + gts)
    id_preds = [np.asarray(decoded[f]) for f in preds]
    id_gts = [np.asarray(decoded[f]) for f in gts]
    by_label = {Path(g).name: i for i, g in enumerate(gts)}
    order = [by_label[Path(p.label).name] for p in dataset.pairs]  # same pairs as the files

    k = cs.num_classes
    target_table = cs.lut[:256].astype(np.int64)  # label id -> train id, 255 ignored
    pred_table = np.where(target_table == IGNORE_INDEX, k, target_table)  # ignored: a miss
    pairs_in_order = [(id_preds[i], id_gts[i]) for i in order]

    def count(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return fold_histogram(joint_histogram(*pair), target_table, pred_table, k)

    def ours_memory() -> None:
        cm = ConfusionMatrix(k, class_names=cs.train_names)
        for counts in ordered_map(count, pairs_in_order, workers=default_workers()):
            cm.add_counts(counts)
        out["ours_memory"] = cm.compute()

    def official_memory() -> None:
        out["official_memory"] = official_in_memory(preds, gts, decoded)

    memory = interleaved({"official": official_memory, "labelbridge": ours_memory}, args.pairs)
    diff_memory = _agree(out["ours_memory"], out["official_memory"])
    assert np.array_equal(out["ours_memory"].confusion, out["ours_files"].confusion)
    return {
        "pairs": n,
        "files": files,
        "memory": memory,
        "miou": out["ours_files"].miou,
        "diff": max(diff_files, diff_memory),
    }


# ------------------------------------------------------------------- pseudo-labelling
def _teacher() -> tuple[torch.nn.Module, str]:
    from labelbridge.models import load_checkpoint

    loaded = load_checkpoint(TEACHER_S2)
    return loaded.model.eval(), f"{loaded.spec} ({TEACHER_S2.name})"


class ShapeRecorder(torch.nn.Module):
    """Wraps a model; records the input shape of every forward pass."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.num_classes = getattr(inner, "num_classes", None)
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return self.inner(x)


def part_pseudo(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from labelbridge.config.pseudo import DatasetEntry
    from labelbridge.constants import DEFAULT_TTA_SCALES
    from labelbridge.data import create_dataset
    from labelbridge.pseudo.run import PseudoLabeler, Teacher
    from labelbridge.taxonomy import load_ontology

    model, name = _teacher()
    recorder = ShapeRecorder(model)
    ontology = load_ontology(MAPPING)
    dataset = create_dataset("camvid", CAMVID_ROOT, "train")
    n = args.pseudo_images
    entry = DatasetEntry(
        name="camvid_train", reader="camvid", root=str(CAMVID_ROOT), split="train",
        ontology=MAPPING, limit=n,
    )  # fmt: skip
    labeler = PseudoLabeler(
        teacher=Teacher(model=recorder, taxonomy=ontology.source),
        tta_scales=list(DEFAULT_TTA_SCALES),
        flip=True,
        batch_scales=True,
        priors=True,
        batch_size=1,
        num_workers=2,
        previews=0,
    )
    runs = itertools.count()

    def pipeline() -> None:
        recorder.shapes.clear()
        labeler.run_dataset(
            entry=entry, dataset=dataset, ontology=ontology, folder=work / f"pl{next(runs)}"
        )

    pipeline()  # warm-up (kernels, allocator); records the shapes replayed below
    shapes = list(recorder.shapes)
    inputs = [torch.rand(s) for s in shapes]

    def forwards() -> None:
        with torch.inference_mode():
            for x in inputs:
                model(x)

    times = interleaved(
        {"forward passes": forwards, "labelbridge pseudo-label": pipeline}, args.pairs
    )
    return {
        "images": n,
        "teacher": name,
        "passes": len(shapes),
        "passes_per_image": len(shapes) / n,
        "sizes": sorted({s[-2:] for s in shapes}),
        "times": times,
    }


# ---------------------------------------------------------------------- forward pass
def _edgenets(folder: Path) -> torch.nn.Module:
    import argparse as ap

    sys.path.insert(0, str(folder))
    try:
        from model.segmentation.espnetv2 import ESPNetv2Segmentation  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(folder))
    opts = ap.Namespace(
        s=2.0, channels=3, num_classes=1000, weights=None, classes=20, dataset="city"
    )
    net = ESPNetv2Segmentation(opts, classes=20, dataset="city")
    net.load_state_dict(torch.load(TEACHER_S2, map_location="cpu", weights_only=True))
    return net.eval()


def part_forward(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from labelbridge.constants import IMAGENET_MEAN, IMAGENET_STD

    if args.edgenets is None or not (args.edgenets / "model" / "segmentation").is_dir():
        return {"skipped": f"no EdgeNets code at {args.edgenets} (pass --edgenets DIR)"}
    ours, _ = _teacher()
    theirs = _edgenets(args.edgenets)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    gen = torch.Generator().manual_seed(0)
    rows, k = [], int(ours.num_classes)
    for h, w in FORWARD_SIZES:
        x = torch.rand(2, 3, h, w, generator=gen)  # a flip pair, as the TTA batches it
        xn = (x - mean) / std  # the authors' model takes normalised input
        with torch.inference_mode():
            a, b = ours(x), theirs(xn)[:, :k]
            diff = float((a - b).abs().max())
            agree = float((a.argmax(1) == b.argmax(1)).float().mean())

            def run_ours(x: torch.Tensor = x) -> None:
                ours(x)

            def run_theirs(xn: torch.Tensor = xn) -> None:
                theirs(xn)

            times = interleaved({"EdgeNets": run_theirs, "labelbridge": run_ours}, args.pairs)
        rows.append({"size": (h, w), "times": times, "max_abs_diff": diff, "label_agree": agree})
    return {"rows": rows}


# -------------------------------------------------------------------------- training
def _train_config(out: Path, steps: int, extra: dict[str, Any] | None = None) -> Any:
    from labelbridge.config.train import TrainConfig

    cfg = {
        "taxonomy": "camvid11",
        "datasets": [{"reader": "camvid", "root": str(CAMVID_ROOT), "split": "train", "labels": "gt"}],
        "val": [{"reader": "camvid", "root": str(CAMVID_ROOT), "split": "val", "limit": 1}],
        "model": {"spec": TRAIN["spec"]},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
        "schedule": {"name": "poly", "power": 0.9, "warmup_steps": 0},
        "resize": list(TRAIN["resize"]),
        "augment": {"scale_range": [1.0, 1.0], "crop": list(TRAIN["crop"]), "hflip": True},
        "batch_size": TRAIN["batch"],
        "epochs": 1,
        "steps_per_epoch": steps,
        "num_workers": 1,
        "seed": 0,
        "early_stopping": {"enabled": False},
        "finetune": {"enabled": False},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                    "num_sanity_val_steps": 0},
        "output": str(out),
    }  # fmt: skip
    cfg.update(extra or {})
    return TrainConfig.model_validate(cfg)


class _HandDataset(torch.utils.data.Dataset):
    """CamVid train pairs decoded with PIL, resized, randomly cropped and flipped."""

    def __init__(self) -> None:
        from labelbridge.data import create_dataset
        from labelbridge.taxonomy import load_taxonomy

        self.ds = create_dataset("camvid", CAMVID_ROOT, "train")
        self.tax = load_taxonomy("camvid11")

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.ds.pairs[i]
        w, h = TRAIN["resize"]
        img = Image.open(pair.image).convert("RGB").resize((w, h), Image.BILINEAR)
        lab = Image.open(pair.label).resize((w, h), Image.NEAREST)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255)
        y = torch.from_numpy(self.tax.to_train_ids(np.asarray(lab)).astype(np.int64))
        ch, cw = TRAIN["crop"]
        top, left = np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1)
        x, y = x[:, top : top + ch, left : left + cw], y[top : top + ch, left : left + cw]
        if np.random.rand() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x, y


def _hand_loop(steps: int, fixed: bool) -> list[float]:
    from labelbridge.constants import IGNORE_INDEX
    from labelbridge.models import create_model

    torch.manual_seed(0)
    model = create_model(TRAIN["spec"], num_classes=11).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(
        _HandDataset(), batch_size=TRAIN["batch"], shuffle=True, num_workers=1, drop_last=True
    )
    batches = iter(loader)
    batch = next(batches)
    times, last = [], None
    for _ in range(steps):
        x, y = batch if fixed else next(batches)
        loss = F.cross_entropy(model(x), y, ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        now = time.perf_counter()
        if last is not None:
            times.append(now - last)
        last = now
    return times


def part_train(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from labelbridge.engine.train import run_training

    runs = itertools.count()
    per_step: dict[str, list[float]] = {}

    def side(name: str, fn: Callable[[], list[float]]) -> Callable[[], None]:
        def run() -> None:
            per_step.setdefault(name, []).append(median(fn()[1:]))  # first step: warm-up

        return run

    def ours() -> list[float]:
        timer = StepTimes()
        run_training(_train_config(work / f"train{next(runs)}", args.steps), callbacks=[timer])
        return timer.times

    sides = {
        "hand-written loop": side("hand-written loop", lambda: _hand_loop(args.steps, False)),
        "labelbridge train": side("labelbridge train", ours),
        "fixed in-memory batch": side("fixed in-memory batch", lambda: _hand_loop(args.steps, True)),
    }  # fmt: skip
    interleaved(sides, args.pairs)
    return {"settings": dict(TRAIN), "steps": args.steps, "per_step": per_step}


# ----------------------------------------------------------------------- peak memory
def _rss_child(kind: str, n: int, work: Path) -> None:
    """Run one job in this (fresh) process and print its peak RSS in MiB as JSON."""
    if kind == "pseudo":
        from labelbridge.config.pseudo import PseudoLabelConfig
        from labelbridge.pseudo.run import run_pseudo_label

        cfg = PseudoLabelConfig.model_validate(
            {
                "teacher": {"checkpoint": str(TEACHER_S2)},
                "datasets": [{"name": "camvid_train", "reader": "camvid", "root": str(CAMVID_ROOT),
                              "split": "train", "ontology": MAPPING, "limit": n}],
                "tta": {"flip": False, "scales": [1.0]},
                "outputs": {"previews": 0},
                "output": str(work),
                "device": "cpu",
            }
        )  # fmt: skip
        run_pseudo_label(cfg)
    else:
        from labelbridge.evaluation.model_eval import evaluate_prediction_folder
        from labelbridge.taxonomy import load_taxonomy

        dataset, pred_dir, _, _ = _cityscapes_folder(work, n)
        evaluate_prediction_folder(
            pred_dir, dataset, pred_taxonomy=load_taxonomy("cityscapes"), pred_ids="label",
            progress=False,
        )  # fmt: skip
    print(json.dumps({"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def part_rss(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sizes = {"pseudo": (10, 40), "eval": (40, 233)}
    out: dict[str, Any] = {}
    for kind, ns in sizes.items():
        for n in ns:
            folder = work / f"rss_{kind}_{n}"
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.speed", "--rss-child", kind, str(n), str(folder)],
                capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)},
            )  # fmt: skip
            if proc.returncode:
                raise RuntimeError(f"rss child {kind} {n} failed:\n{proc.stderr[-2000:]}")
            out[f"{kind}_{n}"] = json.loads(proc.stdout.strip().splitlines()[-1])["rss_mib"]
    return {"sizes": sizes, "rss_mib": out}


# --------------------------------------------------------------------------- report
def _ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    return median(times[num]) / median(times[den])


def render(
    args: argparse.Namespace, res: dict[str, Any], load: tuple[str, str]
) -> tuple[str, list[str]]:
    lines = [
        "## Speed against the anchors (issue 20)",
        "",
        run_header(command_line(__file__, sys.argv[1:])),
    ]
    lines += [f"Load average before / after: {load[0]} / {load[1]}; torch threads {torch.get_num_threads()}; "
              f"{args.pairs} interleaved pairs per comparison (order flipped every pair), medians.", ""]  # fmt: skip
    ratios: list[str] = []
    if "eval" in res:
        r = res["eval"]
        n = r["pairs"]
        f, m = r["files"], r["memory"]
        lines += [
            "### Evaluation vs cityscapesscripts",
            "",
            f"{n} real CamVid test maps (480x360) as Cityscapes label ids with perturbed predictions; "
            f"mIoU {100 * r['miou']:.4f}% on both sides, largest IoU difference {r['diff']:.1e}.",
            "",
            "| input | cityscapesscripts s | labelbridge s | pairs/s (ours) | ours faster by |",
            "|---|---:|---:|---:|---:|",
            f"| label-id PNG files | {median(f['official']):.3f} | {median(f['labelbridge']):.3f} | "
            f"{n / median(f['labelbridge']):.0f} | {_ratio(f, 'official', 'labelbridge'):.2f}x |",
            f"| decoded maps in memory | {median(m['official']):.3f} | {median(m['labelbridge']):.3f} | "
            f"{n / median(m['labelbridge']):.0f} | {_ratio(m, 'official', 'labelbridge'):.2f}x |",
            "",
        ]
        ratios += [f"eval files: {_ratio(f, 'official', 'labelbridge'):.2f}x cityscapesscripts (goal >= 3x)",
                   f"eval memory: {_ratio(m, 'official', 'labelbridge'):.2f}x cityscapesscripts (goal >= 10x)"]  # fmt: skip
    if "pseudo" in res:
        r = res["pseudo"]
        t = r["times"]
        per_image = median(t["labelbridge pseudo-label"]) / r["images"]
        lines += [
            "### Pseudo-labelling vs its own forward passes",
            "",
            f"Teacher {r['teacher']}; {r['images']} CamVid train images, default TTA ({r['passes_per_image']:.0f} "
            f"passes per image: flip pairs batched, sizes {r['sizes']}), priors {MAPPING}; start-up excluded (one "
            "warm-up run). The forward side replays the same input shapes through the bare model.",
            "",
            "| side | median s | s/image |",
            "|---|---:|---:|",
            *[f"| {k} | {median(v):.2f} | {median(v) / r['images']:.2f} |" for k, v in t.items()],
            "",
        ]
        res["pseudo"]["s_per_image"] = per_image
        ratios.append(f"pseudo-label: {_ratio(t, 'labelbridge pseudo-label', 'forward passes'):.3f}x its forward passes (goal <= 1.10x)")  # fmt: skip
    if "forward" in res:
        r = res["forward"]
        lines += ["### ESPNetv2 s=2.0 forward vs the authors' EdgeNets code", ""]
        if "skipped" in r:
            lines += [f"Skipped: {r['skipped']}.", ""]
            ratios.append(f"forward vs EdgeNets: skipped ({r['skipped']})")
        else:
            lines += [
                "Same published weights; batch 2 (a flip pair); their input ImageNet-normalised, ours normalises "
                "inside the model.",
                "",
                "| input (H x W) | EdgeNets s | labelbridge s | ours / theirs | max abs logit diff | label agreement |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for row in r["rows"]:
                t = row["times"]
                h, w = row["size"]
                lines.append(
                    f"| {h} x {w} | {median(t['EdgeNets']):.3f} | {median(t['labelbridge']):.3f} | "
                    f"{_ratio(t, 'labelbridge', 'EdgeNets'):.3f} | {row['max_abs_diff']:.1e} | "
                    f"{100 * row['label_agree']:.3f}% |"
                )
                ratios.append(f"forward {h}x{w}: {_ratio(t, 'labelbridge', 'EdgeNets'):.3f}x EdgeNets (goal <= 1.05x)")  # fmt: skip
            lines.append("")
    if "train" in res:
        r = res["train"]
        s = r["settings"]
        ps = r["per_step"]
        lines += [
            "### Training steps",
            "",
            f"{s['spec']} (random init), CamVid train, resize {s['resize'][0]}x{s['resize'][1]}, crop "
            f"{s['crop'][1]}x{s['crop'][0]}, hflip, batch {s['batch']}, AdamW, one loader worker; {r['steps']} "
            "steps per run, the first excluded, median step per run, median over runs.",
            "",
            "| side | s/step | steps/s |",
            "|---|---:|---:|",
            *[f"| {k} | {median(v):.3f} | {1 / median(v):.3f} |" for k, v in ps.items()],
            "",
        ]
        ratios.append(f"train: labelbridge {_ratio(ps, 'hand-written loop', 'labelbridge train'):.3f}x the plain loop's steps/s (goal >= 0.9x); "
                      f"{_ratio(ps, 'fixed in-memory batch', 'labelbridge train'):.3f}x the fixed batch's")  # fmt: skip
    if "rss" in res:
        r = res["rss"]["rss_mib"]
        (p1, p2), (e1, e2) = res["rss"]["sizes"]["pseudo"], res["rss"]["sizes"]["eval"]
        dp = r[f"pseudo_{p2}"] / r[f"pseudo_{p1}"] - 1
        de = r[f"eval_{e2}"] / r[f"eval_{e1}"] - 1
        lines += [
            "### Peak memory (fresh process each)",
            "",
            "| job | small | peak RSS MiB | large | peak RSS MiB | growth |",
            "|---|---:|---:|---:|---:|---:|",
            f"| pseudo-label (one scale) | {p1} images | {r[f'pseudo_{p1}']:.0f} | {p2} images | {r[f'pseudo_{p2}']:.0f} | {100 * dp:+.1f}% |",
            f"| evaluate prediction folder | {e1} pairs | {r[f'eval_{e1}']:.0f} | {e2} pairs | {r[f'eval_{e2}']:.0f} | {100 * de:+.1f}% |",
            "",
        ]  # fmt: skip
        ratios.append(
            f"peak RSS growth: pseudo {100 * dp:+.1f}%, eval {100 * de:+.1f}% (goal < 10%)"
        )
    lines += ["Ratios:", "", *[f"- {r}" for r in ratios]]
    return "\n".join(lines), ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}"
    )
    parser.add_argument("--pairs", type=int, default=3, help="interleaved pairs per comparison")
    parser.add_argument("--eval-images", type=int, default=233, help="CamVid test maps evaluated")
    parser.add_argument(
        "--pseudo-images", type=int, default=3, help="CamVid images pseudo-labelled per run"
    )
    parser.add_argument("--steps", type=int, default=6, help="training steps per run")
    parser.add_argument(
        "--edgenets", type=Path, default=None, help="local folder of the EdgeNets code"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--rss-child", nargs=3, metavar=("KIND", "N", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.rss_child:
        kind, n, folder = args.rss_child
        _rss_child(kind, int(n), Path(folder))
        return 0
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {PARTS}")
    require_shared_data(CAMVID_ROOT, TEACHER_S2)
    before = load_average()
    res: dict[str, Any] = {}
    runners = {"eval": part_eval, "pseudo": part_pseudo, "forward": part_forward,
               "train": part_train, "rss": part_rss}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for part in parts:
            start = time.perf_counter()
            res[part] = runners[part](args, Path(tmp) / part)
            log.warning("part %s done in %.0f s", part, time.perf_counter() - start)
    text, ratios = render(args, res, (before, load_average()))
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
        summary = json.loads(JSON_OUT.read_text()) if JSON_OUT.is_file() else {}
        summary |= {
            "hardware": hardware(),
            "load_average": before,
            "command": command_line(__file__, sys.argv[1:]),
        }
        if "pseudo" in res:
            summary |= {"pseudo_s_per_image": res["pseudo"]["s_per_image"],
                        "tta_passes_per_image": res["pseudo"]["passes_per_image"]}  # fmt: skip
        if "train" in res:
            summary |= {"train_s_per_step": median(res["train"]["per_step"]["labelbridge train"]),
                        "train_batch": TRAIN["batch"], "train_crop": list(TRAIN["crop"])}  # fmt: skip
        JSON_OUT.write_text(json.dumps(summary, indent=2) + "\n")
    print("\n" + "\n".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
