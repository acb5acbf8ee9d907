"""CPU latency of exported models: PyTorch eager against onnxruntime on the published
Cityscapes ESPNetv2 s=0.5, s=2.0 and DiCENet s=1.75 files (issue 16).

Each file present in ``../shared/weights`` is exported with ``labelbridge export``'s code
path (``export_model(..., "onnx")``: symbolic sizes, normalisation inside the graph, the
export's own check against eager), then timed on one input of ``--size`` (default
1x3x512x1024; a real CamVid test image resized to it where ``../shared/data/camvid`` is
present, else seeded noise). Both runtimes get one thread (``torch.set_num_threads(1)``;
onnxruntime ``intra_op_num_threads=1``, ``inter_op_num_threads=1``, sequential
execution) for a like-for-like comparison; after one warm-up call each, the runs are
interleaved (eager and onnxruntime alternate, the order flipping every round, every
model in each round) and the medians are reported with the 1-minute load average at the
start and end: when another job shares the machine the absolute times grow, the ratios
are what to read.

Run:  python -m benchmarks.export_latency [--size 1024x512] [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common.paths import CAMVID_ROOT, WEIGHTS
from benchmarks.common.results import command_line, program, run_header, write_section

SECTION = "export-latency"
#: Published files timed, in table order.
MODELS: dict[str, str] = {
    "ESPNetv2 s=0.5": "espnetv2_s_0.5_city_1024x512.pth",
    "ESPNetv2 s=2.0": "espnetv2_s_2.0_city_1024x512.pth",
    "DiCENet s=1.75": "dicenet_s_1.75_city_1024x512.pth",
}


def input_image(width: int, height: int) -> tuple[torch.Tensor, str]:
    """``(1, 3, H, W)`` in ``[0, 1]``: the first CamVid test image resized, or noise."""
    from labelbridge.models import image_to_tensor

    images = sorted((CAMVID_ROOT / "test").glob("*.jpg"))
    if images:
        from PIL import Image

        x = image_to_tensor(np.asarray(Image.open(images[0]).convert("RGB")))
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        return x.clamp(0, 1), f"CamVid test image {images[0].name} resized"
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)), "noise"


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1024x512", help="WIDTHxHEIGHT of the timed input")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    from labelbridge.cli.app import parse_size
    from labelbridge.models import load_model
    from labelbridge.models.export import export_model

    width, height = parse_size(args.size, option="--size")
    present = {name: WEIGHTS / f for name, f in MODELS.items() if (WEIGHTS / f).is_file()}
    if not present:
        raise SystemExit(f"no published weights in {WEIGHTS} (the benchmark needs ../shared)")
    torch.set_num_threads(1)
    load_start, wall = os.getloadavg()[0], time.perf_counter()
    x, what = input_image(width, height)
    feed = {"images": x.numpy()}
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name, path in present.items():
            loaded = load_model(checkpoint=path)
            t0 = time.perf_counter()
            export_model(loaded, "onnx", Path(tmp) / path.stem, source=path)
            session = ort_session(Path(tmp) / path.stem / "model.onnx")
            model = loaded.model

            def eager(model=model) -> np.ndarray:
                with torch.inference_mode():
                    return model(x).numpy()

            def onnxrt(session=session) -> np.ndarray:
                return session.run(None, feed)[0]

            diff = float(np.abs(eager() - onnxrt()).max())  # also the warm-up call of each
            rows[name] = {
                "file": path.name,
                "parameters": sum(p.numel() for p in model.parameters()),
                "export_s": time.perf_counter() - t0,
                "max_diff": diff,
                "eager": [],
                "onnxruntime": [],
            }
            runs[name] = (eager, onnxrt)
        for r in range(args.repeats):
            for name, (eager, onnxrt) in runs.items():
                pair = [("eager", eager), ("onnxruntime", onnxrt)]
                for kind, call in pair if r % 2 == 0 else pair[::-1]:
                    rows[name][kind].append(seconds(call))
    load_end = os.getloadavg()[0]
    md = render(args, width, height, what, rows, load_start, load_end, time.perf_counter() - wall)
    print(md)
    if not args.no_write:
        write_section(SECTION, md)
    return 0


def render(
    args: argparse.Namespace,
    width: int,
    height: int,
    what: str,
    rows: dict[str, dict],
    load_start: float,
    load_end: float,
    wall: float,
) -> str:
    import onnxruntime

    lines = [
        "## Export: PyTorch eager vs onnxruntime on the CPU (issue 16)",
        "",
        run_header(command_line(__file__)).rstrip(),
        f"- input: 1x3x{height}x{width} ({what}); one thread each (torch.set_num_threads(1); "
        "onnxruntime intra_op_num_threads=1, inter_op_num_threads=1, sequential); one warm-up "
        f"call each, then {args.repeats} interleaved rounds (eager and onnxruntime alternate, "
        "the order flipping every round); medians",
        f"- onnxruntime {onnxruntime.__version__}, ONNX from `labelbridge export --format onnx` "
        "(torch.onnx.export(dynamo=True), opset 18, symbolic batch/height/width, normalisation "
        "and padding inside the graph)",
        f"- 1-minute load average: {load_start:.1f} at the start, {load_end:.1f} at the end "
        f"(another job shared the 2 cores when it is above ~1: absolute times grow, read the "
        f"ratios); wall time {wall / 60:.1f} min including the exports",
        "",
        "| model | parameters | export (s) | eager (ms) | onnxruntime (ms) | eager / onnxruntime | max abs logit diff |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        eager = 1000 * statistics.median(row["eager"])
        ort = 1000 * statistics.median(row["onnxruntime"])
        lines.append(
            f"| {name} (`{row['file']}`) | {row['parameters']:,} | {row['export_s']:.0f} | "
            f"{eager:.0f} | {ort:.0f} | {eager / ort:.2f}x | {row['max_diff']:.2g} |"
        )
    lines += [
        "",
        "Per-round times (ms): "
        + "; ".join(
            f"{name}: eager {', '.join(f'{1000 * t:.0f}' for t in row['eager'])} / onnxruntime "
            f"{', '.join(f'{1000 * t:.0f}' for t in row['onnxruntime'])}"
            for name, row in rows.items()
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
