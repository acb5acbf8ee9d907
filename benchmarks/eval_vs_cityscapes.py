"""P3: our evaluator versus the official Cityscapes scripts on the same predictions.

Real CamVid label maps are converted to Cityscapes label ids and written in the layout
``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling`` expects
(``*_gtFine_labelIds.png``), together with realistically perturbed predictions
(shifted maps, class swaps in blocks, blocks of ids the evaluation ignores). Both
evaluators read the same PNG files; the per-class IoUs and mIoU must agree to 1e-9.
Times are medians over ``--repeats`` runs, each reading every file from disk.

Run:  python -m benchmarks.eval_vs_cityscapes [--num-images 233] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common.cityscapes_layout import (
    decoded_images,
    official_in_memory,
    official_scores,
    write_layout,
)
from benchmarks.common.paths import CAMVID_ROOT
from benchmarks.common.results import command_line, program, run_header, write_section
from labelbridge.data.base import read_label_png
from labelbridge.evaluation import ConfusionMatrix, SegmentationMetrics
from labelbridge.taxonomy import load_taxonomy

SECTION = "p3-eval-vs-cityscapes"
TOLERANCE = 1e-9


def make_layout(camvid_root: Path, out: Path, num_images: int) -> tuple[list[str], list[str]]:
    labels = sorted((camvid_root / "testannot").glob("*.png"))[:num_images]
    if not labels:
        raise SystemExit(f"no CamVid test labels under {camvid_root / 'testannot'}")
    return write_layout(labels, out)


def ours(pred_files: list[str], gt_files: list[str]) -> SegmentationMetrics:
    cs = load_taxonomy("cityscapes")
    cm = ConfusionMatrix(cs.num_classes, class_names=cs.train_names)
    for pf, gf in zip(pred_files, gt_files, strict=True):
        # label ids of ignored classes become IGNORE_INDEX: a miss in the prediction
        cm.update(
            cs.to_train_ids(read_label_png(Path(pf))), cs.to_train_ids(read_label_png(Path(gf)))
        )
    return cm.compute()


def ours_in_memory(preds: list[np.ndarray], gts: list[np.ndarray]) -> SegmentationMetrics:
    cm = ConfusionMatrix(19)
    for p, g in zip(preds, gts, strict=True):
        cm.update(p, g)
    return cm.compute()


def timed(fn, *args, repeats: int):  # noqa: ANN001, ANN202
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--camvid-root", type=Path, default=CAMVID_ROOT, help="CamVid (SegNet layout) root"
    )
    parser.add_argument(
        "--num-images", type=int, default=233, help="CamVid test label maps to use (max 233)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per evaluator (median reported)"
    )
    parser.add_argument(
        "--profile", choices=["cpu", "gpu"], default="cpu", help="same work on both (CPU-only task)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only, do not update results.md"
    )
    args = parser.parse_args()

    cs = load_taxonomy("cityscapes")
    with tempfile.TemporaryDirectory() as tmp:
        pred_files, gt_files = make_layout(args.camvid_root, Path(tmp), args.num_images)
        theirs, t_official = timed(official_scores, pred_files, gt_files, repeats=args.repeats)
        mine, t_ours = timed(ours, pred_files, gt_files, repeats=args.repeats)
        decoded = decoded_images(pred_files + gt_files)
        theirs_mem, t_official_mem = timed(
            official_in_memory, pred_files, gt_files, decoded, repeats=args.repeats
        )
        preds = [cs.to_train_ids(read_label_png(Path(p))) for p in pred_files]
        gts = [cs.to_train_ids(read_label_png(Path(g))) for g in gt_files]
        in_mem, t_mem = timed(ours_in_memory, preds, gts, repeats=args.repeats)
        _, t_convert = timed(
            lambda: [
                cs.to_train_ids(np.asarray(decoded[f], dtype=np.int32))
                for f in pred_files + gt_files
            ],
            repeats=args.repeats,
        )

    worst = 0.0
    rows = []
    for name, iou in mine.iou_by_name().items():
        ref = float(theirs["classScores"][name])
        if math.isnan(ref) or math.isnan(iou):
            assert math.isnan(ref) and math.isnan(iou), f"{name}: ours {iou}, official {ref}"
        else:
            worst = max(worst, abs(iou - ref))
        rows.append((name, iou, ref))
    miou_diff = abs(mine.miou - theirs["averageScoreClasses"])
    assert worst <= TOLERANCE and miou_diff <= TOLERANCE, f"differences {worst}, {miou_diff}"
    assert np.array_equal(in_mem.confusion, mine.confusion)
    assert theirs_mem["averageScoreClasses"] == theirs["averageScoreClasses"]

    n = len(pred_files)
    fmt = lambda v: "n/a" if math.isnan(v) else f"{100 * v:.4f}"  # noqa: E731
    lines = [
        "## P3 — evaluation: ours vs official cityscapesscripts",
        "",
        run_header(command_line(__file__)),
        f"Inputs: {n} real CamVid test label maps (480x360) converted to Cityscapes label ids, with perturbed "
        "predictions (shift, block-wise class swaps, blocks of ignored ids = misses); both evaluators read the "
        f"same {2 * n} PNG files. cityscapesscripts {_cs_version()} ran its pure-Python path "
        "(no Cython extension installed), instance-level scores off.",
        "",
        "| evaluator | input | mIoU (%) | median time, s | image pairs/s |",
        "|---|---|---|---|---|",
        f"| cityscapesscripts `evaluateImgLists` | label-id PNG files | {fmt(theirs['averageScoreClasses'])} "
        f"| {t_official:.3f} | {n / t_official:.0f} |",
        f"| labelbridge: `read_label_png` + `Taxonomy.to_train_ids` + `ConfusionMatrix` | label-id PNG files "
        f"| {fmt(mine.miou)} | {t_ours:.3f} | {n / t_ours:.0f} |",
        f"| cityscapesscripts `evaluateImgLists` | decoded images (`Image.open` served from memory) "
        f"| {fmt(theirs_mem['averageScoreClasses'])} | {t_official_mem:.3f} | {n / t_official_mem:.0f} |",
        f"| labelbridge `ConfusionMatrix.update` + `compute` | train-id arrays in memory | {fmt(in_mem.miou)} "
        f"| {t_mem:.3f} | {n / t_mem:.0f} |",
        "",
        f"Largest per-class IoU difference: {worst:.1e}; mIoU difference: {miou_diff:.1e} "
        f"(tolerance {TOLERANCE:g}). Repeats: {args.repeats} (median). Speed ratio official / ours: "
        f"{t_official / t_ours:.2f}x on files, {t_official_mem / t_mem:.1f}x on in-memory maps "
        "(counting only). On files both are dominated by decoding and, on our side, by "
        f"`Taxonomy.to_train_ids` (label ids -> train ids with validation): {t_convert:.3f} s for "
        f"the {2 * n} maps.",
        "",
        "| class | ours IoU (%) | official IoU (%) |",
        "|---|---|---|",
        *[f"| {name} | {fmt(a)} | {fmt(b)} |" for name, a, b in rows],
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        print(f"\nwrote section {SECTION!r} of {write_section(SECTION, text)}")


def _cs_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cityscapesscripts")
    except PackageNotFoundError:
        return "(unknown version)"


if __name__ == "__main__":
    main()
