"""Pseudo-labelling speed: a straightforward loop versus labelbridge's pipeline.

Both label the same real CamVid train images with the same teacher (the published
ESPNetv2 s=2.0 Cityscapes model when ``../shared/weights`` has it, else a randomly
initialised zoo ESPNetv2), the same TTA scales and flip, and ontology priors
(``camvid11_to_cityscapes``):

* **straightforward**: per image: decode, one forward pass per scale and flip, resize and
  softmax, mask with a loop over the extra labels and classes, write the PNG, all
  synchronously in the main thread;
* **labelbridge**: :class:`labelbridge.pseudo.run.PseudoLabeler` (flip pairs batched,
  vectorised masking on the model's device, decoding and encoding/writing in background
  threads, manifest, atomic writes).

The model's ``forward`` is wrapped with a timer (synchronised on CUDA), so the share of
wall time spent outside forward passes is measured directly, as is the share of TTA time
spent masking. One warm-up image (the split's last) runs first (excluded), so both see warmed-up kernels.

Run:  python -m benchmarks.pseudo_label_speed [--profile cpu|gpu] [--device cpu|cuda]
      [--images N] [--scales 0.5,1.0,...] [--threads T] [--no-results] [--markdown-out F]

Real data and weights are read from ``$LABELBRIDGE_SHARED`` (default ``../shared``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import labelbridge.pseudo.labelling as run_mod
from benchmarks.common.paths import CAMVID_ROOT, TEACHER_S2
from benchmarks.common.results import command_line, program, run_header, write_section
from labelbridge.config.pseudo import DatasetEntry
from labelbridge.constants import DEFAULT_TTA_SCALES, IGNORE_INDEX
from labelbridge.data import create_dataset
from labelbridge.pseudo.run import PseudoLabeler, Teacher
from labelbridge.taxonomy import load_ontology

MAPPING = "camvid11_to_cityscapes"
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {"device": "cpu", "images": 4, "batch_size": 1, "num_workers": 2},
    "gpu": {"device": "cuda", "images": 48, "batch_size": 4, "num_workers": 4},
}


class TimedModel(nn.Module):
    """Wraps a model; accumulates the wall time of its forward passes."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.num_classes = getattr(inner, "num_classes", None)
        self.seconds = 0.0
        self.calls = 0

    def _sync(self, x: torch.Tensor) -> None:
        if x.is_cuda:
            torch.cuda.synchronize(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._sync(x)
        start = time.perf_counter()
        out = self.inner(x)
        self._sync(out)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def load_teacher(device: torch.device) -> tuple[nn.Module, str]:
    """The published ESPNetv2 s=2.0 Cityscapes teacher, else a random zoo ESPNetv2."""
    from labelbridge.models import create_model, load_checkpoint

    if TEACHER_S2.is_file():
        loaded = load_checkpoint(TEACHER_S2)
        return loaded.model.to(device).eval(), f"{loaded.spec} ({TEACHER_S2.name})"
    model = create_model("espnetv2:s=2.0", num_classes=19)
    return model.to(device).eval(), "espnetv2:s=2.0 (random init: published weights not found)"


def straightforward(
    dataset: Any,
    positions: list[int],
    model: TimedModel,
    allowed: np.ndarray,
    scales: list[float],
    out: Path,
    device: torch.device,
) -> dict[str, float]:
    """Per image, per scale, per flip; masking by loops; synchronous decode and write."""
    mask_s = tta_s = 0.0
    start = time.perf_counter()
    for pos in positions:
        sample = dataset.load(pos)
        img = torch.from_numpy(sample.image).permute(2, 0, 1)[None].float().div(255).to(device)
        h, w = img.shape[-2:]
        t0 = time.perf_counter()
        with torch.inference_mode():
            acc = torch.zeros(1, allowed.shape[1], h, w, device=device)
            for s in scales:
                size = (max(1, round(h * s)), max(1, round(w * s)))
                x = (
                    F.interpolate(img, size=size, mode="bilinear", align_corners=False)
                    if size != (h, w)
                    else img
                )
                for flip in (False, True):
                    logits = model(x.flip(-1) if flip else x)
                    logits = F.interpolate(
                        logits, size=(h, w), mode="bilinear", align_corners=False
                    )
                    probs = torch.softmax(logits, dim=1)
                    acc += probs.flip(-1) if flip else probs
            acc /= 2 * len(scales)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        probs = acc[0].cpu().numpy()
        gt = sample.label
        for e in np.unique(gt):
            sel = gt == e
            for c in np.flatnonzero(~allowed[e]):
                probs[c][sel] = 0.0
        labels = probs.argmax(0).astype(np.uint8)
        labels[probs.max(0) <= 0] = IGNORE_INDEX
        t2 = time.perf_counter()
        tta_s += t1 - t0
        mask_s += t2 - t1
        target = out / f"{sample.key}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(labels, mode="L").save(target)
    return {"wall": time.perf_counter() - start, "tta": tta_s, "mask": mask_s}


def ours(
    dataset: Any,
    n: int,
    model: TimedModel,
    scales: list[float],
    out: Path,
    batch_size: int,
    num_workers: int,
) -> dict[str, float]:
    """:class:`PseudoLabeler` with timers around the TTA and the masking."""
    timers = {"tta": 0.0, "mask": 0.0}
    real_apply = run_mod.apply_priors

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def timed_apply(*args: Any, **kwargs: Any) -> Any:
        sync()
        t = time.perf_counter()
        result = real_apply(*args, **kwargs)
        sync()
        timers["mask"] += time.perf_counter() - t
        return result

    labeler = PseudoLabeler(
        teacher=Teacher(model=model, taxonomy=load_ontology(MAPPING).source),
        tta_scales=scales,
        flip=True,
        batch_scales=True,
        priors=True,
        batch_size=batch_size,
        num_workers=num_workers,
        previews=0,
    )
    real_predict = labeler.predictor.predict

    def timed_predict(images: torch.Tensor) -> torch.Tensor:
        sync()
        t = time.perf_counter()
        result = real_predict(images)
        sync()
        timers["tta"] += time.perf_counter() - t
        return result

    labeler.predictor.predict = timed_predict  # type: ignore[method-assign]
    run_mod.apply_priors = timed_apply
    entry = DatasetEntry(
        name="camvid_train",
        reader="camvid",
        root=str(CAMVID_ROOT),
        split="train",
        ontology=MAPPING,
        limit=n,
    )
    try:
        start = time.perf_counter()
        labeler.run_dataset(
            entry=entry, dataset=dataset, ontology=load_ontology(MAPPING), folder=out
        )
        wall = time.perf_counter() - start
    finally:
        run_mod.apply_priors = real_apply
    return {"wall": wall, "tta": timers["tta"] + timers["mask"], "mask": timers["mask"]}


def main() -> None:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the profile's)")
    parser.add_argument(
        "--images", type=int, default=None, help="images timed (default: the profile's)"
    )
    parser.add_argument("--scales", default=",".join(str(s) for s in DEFAULT_TTA_SCALES))
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument(
        "--no-results", action="store_true", help="do not write benchmarks/results.md"
    )
    parser.add_argument(
        "--markdown-out", type=Path, default=None, help="also write the section to this file"
    )
    args = parser.parse_args()
    prof = dict(PROFILES[args.profile])
    device = torch.device(args.device or prof["device"])
    n = args.images or prof["images"]
    batch_size = args.batch_size or prof["batch_size"]
    num_workers = prof["num_workers"] if args.num_workers is None else args.num_workers
    scales = [float(s) for s in args.scales.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    if not CAMVID_ROOT.is_dir():
        sys.exit(f"needs real CamVid at {CAMVID_ROOT}")
    model, teacher_name = load_teacher(device)
    timed = TimedModel(model)
    dataset = create_dataset("camvid", CAMVID_ROOT, "train")
    allowed = load_ontology(MAPPING).allowed
    positions = list(range(n))

    warm = dataset.load(len(dataset) - 1)  # warm-up image, not timed
    with torch.inference_mode():
        from labelbridge.models.tta import TTAPredictor

        img = torch.from_numpy(warm.image).permute(2, 0, 1)[None].float().div(255).to(device)
        TTAPredictor(timed, num_classes=19, scales=scales).predict(
            img.expand(batch_size, -1, -1, -1).contiguous()
        )
        TTAPredictor(timed, num_classes=19, scales=scales, batch_scales=False).predict(img)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        timed.reset()
        base = straightforward(
            dataset, positions, timed, allowed, scales, Path(tmp) / "base", device
        )
        base["forward"], base["calls"] = timed.seconds, timed.calls
        results["straightforward loop"] = base
        timed.reset()

        mine = ours(
            dataset, n, timed, scales, Path(tmp) / "ours" / "camvid_train", batch_size, num_workers
        )
        mine["forward"], mine["calls"] = timed.seconds, timed.calls
        results["labelbridge pipeline"] = mine
        same = total = 0
        for pos in positions:
            key = dataset.pairs[pos].key
            a = np.asarray(Image.open(Path(tmp) / "base" / f"{key}.png"))
            b = np.asarray(Image.open(Path(tmp) / "ours" / "camvid_train" / f"{key}.png"))
            same += int((a == b).sum())
            total += a.size
    agreement = same / total

    lines = [
        f"### Pseudo-labelling speed ({args.profile} profile)",
        "",
        run_header(command_line(__file__)),
        f"- teacher: {teacher_name}; device {device}; torch threads {torch.get_num_threads()}",
        f"- the first {n} CamVid train images (480x360), after one warm-up image; TTA scales {scales} x flip "
        f"({2 * len(scales)} passes per image); priors camvid11_to_cityscapes; batch size {batch_size}, "
        f"{num_workers} decode + {num_workers} write threads in the pipeline",
        "",
        "| loop | images/s | forward passes | forward s | wall s | outside forward | masking share of TTA |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {n / r['wall']:.3f} | {r['calls']} | {r['forward']:.2f} | {r['wall']:.2f} | "
            f"{100 * (1 - r['forward'] / r['wall']):.1f}% | {100 * r['mask'] / r['tta']:.2f}% |"
        )
    lines += [
        "",
        f"Labels of the two loops agree on {100 * agreement:.4f}% of pixels (batched flip pairs "
        "change float rounding only). Goal on CPU: outside-forward share <= 15%, masking <= 3% of TTA time.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown_out is not None:
        args.markdown_out.write_text(text + "\n")
    if not args.no_results:
        write_section(f"pseudo-label-speed-{args.profile}", text)


if __name__ == "__main__":
    main()
