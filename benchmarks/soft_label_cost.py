"""What soft labels cost: disk per image, target memory per batch, and training speed
against hard pseudo-label PNGs (issue 18: loading ``.npz`` soft labels must not slow
training by more than 10%).

Real CamVid train images are pseudo-labelled by the published Cityscapes ESPNetv2 s=2.0
with the ``camvid11_to_cityscapes`` priors (one scale, no flip: the cost of *storing and
reading* labels is measured, not their quality), once per ``k`` in ``--top-k``: each run
writes the hard PNGs and the top-``k`` soft labels. Then

* **disk**: mean bytes per image of ``<key>.png`` and ``<key>_soft.npz``;
* **memory**: bytes of one collated training batch's targets (``(B, H, W)`` int64 for
  hard labels; the ``(B, 1 + 2k, H, W)`` float32 target stack for soft ones);
* **loading**: one pass of the training loader over the images (decode, resize, collate),
  hard vs each ``k``, interleaved, median of ``--repeats``;
* **training**: median time per optimiser step of a real training run (ESPNetv2 s=1.0,
  the published Cityscapes initialisation, one loader worker) on hard vs top-3 soft
  labels of the same images, interleaved, median over ``--repeats`` runs; the ratio is
  the acceptance number.

Run:  python -m benchmarks.soft_label_cost [--images 48] [--repeats 3] [--steps 12]
      [--no-write]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common.paths import CAMVID_ROOT, TEACHER_S1, TEACHER_S2, require_shared_data
from benchmarks.common.results import command_line, program, run_header, write_section
from benchmarks.common.timing import StepTimes
from labelbridge.config.pseudo import PseudoLabelConfig
from labelbridge.config.train import TrainConfig, TrainDatasetConfig

SECTION = "soft-label-cost"
MAPPING = "camvid11_to_cityscapes"
RESIZE = (320, 240)
CROP = (192, 256)
BATCH = 8


def pseudo_label(out: Path, k: int, images: int) -> Path:
    """Hard and top-``k`` soft pseudo-labels of the first ``images`` CamVid train images."""
    from labelbridge.pseudo.run import run_pseudo_label

    cfg = PseudoLabelConfig.model_validate(
        {
            "teacher": {"checkpoint": str(TEACHER_S2)},
            "datasets": [
                {
                    "name": "camvid_train",
                    "reader": "camvid",
                    "root": str(CAMVID_ROOT),
                    "split": "train",
                    "ontology": MAPPING,
                    "limit": images,
                }
            ],
            "tta": {"flip": False, "scales": [1.0]},
            "outputs": {"previews": 0, "soft_labels": {"enabled": True, "top_k": k}},
            "output": str(out),
            "device": "cpu",
            "num_workers": 1,
        }
    )
    run_pseudo_label(cfg)
    return out / "camvid_train"


def disk_per_image(folder: Path) -> dict[str, float]:
    """Mean bytes per image of the hard PNGs and the soft-label files."""
    hard = [p.stat().st_size for p in folder.rglob("*.png") if "previews" not in p.parts]
    soft = [p.stat().st_size for p in folder.rglob("*_soft.npz")]
    return {"png": statistics.mean(hard), "npz": statistics.mean(soft)}


def entry(folder: Path, images: int, *, soft: bool) -> TrainDatasetConfig:
    return TrainDatasetConfig(
        reader="camvid",
        root=str(CAMVID_ROOT),
        split="train",
        labels={"pseudo": str(folder), "soft": soft},
        limit=images,
    )


def loader_pass(folder: Path, images: int, *, soft: bool) -> tuple[float, int]:
    """Seconds of one pass of the training loader (no workers) and the bytes of one
    collated batch's targets."""
    from torch.utils.data import DataLoader

    from labelbridge.config.train import PartialLossConfig
    from labelbridge.data.torch_dataset import pad_collate
    from labelbridge.engine.datamodule import build_train_sets
    from labelbridge.engine.stage_targets import StageTargets
    from labelbridge.taxonomy import load_taxonomy

    e = entry(folder, images, soft=soft)
    targets = StageTargets.of_entries([e], PartialLossConfig())
    (ds,) = build_train_sets(
        [e], taxonomy=load_taxonomy("cityscapes"), resize=RESIZE, targets=targets
    )
    pad = targets.layout.pad_values if targets.layout.stacked else None
    loader = DataLoader(
        ds, batch_size=BATCH, collate_fn=lambda b: pad_collate(b, pad), num_workers=0
    )
    start = time.perf_counter()
    nbytes = 0
    for _, target in loader:
        nbytes = max(nbytes, target.numel() * target.element_size())
    return time.perf_counter() - start, nbytes


def train_steps(folder: Path, images: int, out: Path, steps: int, *, soft: bool) -> float:
    """Median seconds per step of a short real training run (first step excluded)."""
    from labelbridge.engine.train import run_training

    cfg = TrainConfig.model_validate(
        {
            "taxonomy": "cityscapes",
            "datasets": [entry(folder, images, soft=soft).model_dump(mode="json")],
            "val": [
                {
                    "reader": "camvid",
                    "root": str(CAMVID_ROOT),
                    "split": "val",
                    "ontology": MAPPING,
                    "label": "camvid_val",
                    "limit": 1,
                }
            ],
            "model": {"spec": "espnetv2:s=1.0,background=true", "weights": str(TEACHER_S1)},
            "resize": list(RESIZE),
            "augment": {"scale_range": [0.75, 1.25], "crop": list(CROP)},
            "batch_size": BATCH,
            "epochs": 1,
            "steps_per_epoch": steps,
            "num_workers": 1,
            "seed": 0,
            "finetune": {"enabled": False},
            "trainer": {
                "accelerator": "cpu",
                "devices": 1,
                "enable_progress_bar": False,
                "num_sanity_val_steps": 0,
            },
            "output": str(out),
        }
    )
    timer = StepTimes()
    run_training(cfg, callbacks=[timer])
    return statistics.median(timer.times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="CamVid train images")
    parser.add_argument("--top-k", default="1,3,5", help="soft-label sizes to measure")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed repeats")
    parser.add_argument("--steps", type=int, default=12, help="training steps per timed run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    require_shared_data()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    ks = [int(v) for v in args.top_k.split(",")]
    start, load = time.time(), _load()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders = {k: pseudo_label(work / f"k{k}", k, args.images) for k in ks}
        disk = {k: disk_per_image(f) for k, f in folders.items()}
        ref = folders[ks[0]]  # its PNGs are the hard labels (the same for every k)
        load_times: dict[str, list[float]] = {"hard": [], **{f"k{k}": [] for k in ks}}
        batch_bytes: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, folder, soft in [("hard", ref, False)] + [
                (f"k{k}", folders[k], True) for k in ks
            ]:
                seconds, nbytes = loader_pass(folder, args.images, soft=soft)
                load_times[name].append(seconds)
                batch_bytes[name] = nbytes
        k_train = 3 if 3 in folders else ks[-1]
        step: dict[str, list[float]] = {"hard": [], "soft": []}
        for r in range(args.repeats):
            for name, soft in (("hard", False), ("soft", True)):
                folder = folders[k_train] if soft else ref
                step[name].append(
                    train_steps(
                        folder, args.images, work / f"run_{name}_{r}", args.steps, soft=soft
                    )
                )
    md = render(args, ks, k_train, disk, load_times, batch_bytes, step, time.time() - start, load)
    print(md)
    if not args.no_write:
        write_section(SECTION, md)
    ratio = statistics.median(step["soft"]) / statistics.median(step["hard"])
    return 0 if ratio <= 1.10 else 1


def _load() -> float:
    import os

    return os.getloadavg()[0]


def render(
    args: argparse.Namespace,
    ks: list[int],
    k_train: int,
    disk: dict[int, dict[str, float]],
    load_times: dict[str, list[float]],
    batch_bytes: dict[str, int],
    step: dict[str, list[float]],
    wall: float,
    load: float,
) -> str:
    med = {name: statistics.median(v) for name, v in load_times.items()}
    hard_step, soft_step = statistics.median(step["hard"]), statistics.median(step["soft"])
    png = statistics.mean(d["png"] for d in disk.values())
    lines = [
        "## Soft labels: disk, memory and training speed against hard labels (issue 18)",
        "",
        run_header(command_line(__file__, sys.argv[1:])),
        f"- wall time: {wall / 60:.1f} min (1-min load average at start: {load:.1f})",
        f"- data: the first {args.images} CamVid train images, pseudo-labelled by the published "
        f"Cityscapes ESPNetv2 s=2.0 with `{MAPPING}` priors (one scale, no flip); training images "
        f"resized to {RESIZE[0]}x{RESIZE[1]}, batch {BATCH}.",
        "",
        "| labels | bytes per image on disk | target bytes per batch | loader pass (s, median) | vs hard |",
        "|---|---:|---:|---:|---:|",
        f"| hard PNG | {png:,.0f} | {batch_bytes['hard']:,} | {med['hard']:.2f} | 1.00 |",
    ]
    for k in ks:
        name = f"k{k}"
        lines.append(
            f"| soft top-{k} `.npz` | {disk[k]['npz']:,.0f} | {batch_bytes[name]:,} | "
            f"{med[name]:.2f} | {med[name] / med['hard']:.2f} |"
        )
    lines += [
        "",
        f"Training (ESPNetv2 s=1.0 from the published Cityscapes weights, crops {CROP[1]}x{CROP[0]}, "
        f"one loader worker, {args.steps} steps, the first excluded; median step time over "
        f"{args.repeats} interleaved runs each): hard PNG {hard_step:.3f} s/step, soft top-{k_train} "
        f"{soft_step:.3f} s/step, ratio **{soft_step / hard_step:.3f}** (acceptance: at most 1.10; "
        f"per-run medians hard {', '.join(f'{v:.3f}' for v in step['hard'])}, soft "
        f"{', '.join(f'{v:.3f}' for v in step['soft'])}).",
        "",
        "Target memory: hard labels travel as `(B, H, W)` int64 (8 bytes per pixel); soft labels as "
        "the `(B, 1 + 2k, H, W)` float32 target stack (4 (1 + 2k) bytes per pixel: 12, 28 and 44 "
        "for k = 1, 3, 5), plus, in the loss, the per-pixel log-probabilities the hard loss needs too.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
