"""How long the README's tour commands take: each run through the real console script on
the real data in ``../shared``, on a measured slice where the full command takes an hour
or more, and the full time extrapolated from the slice's per-image (per-step) time.

A command that runs for minutes is run as it is. A longer one runs twice, on its first
``a`` and first ``b`` images (``--limit`` / ``limit``): the difference of the two wall
times over ``b - a`` images is the time per image, the rest of the first run's time is
the start-up (imports, model loading); the full command's estimate is start-up plus its
images times the time per image. Runs happen in scratch folders under ``--work``;
finished measurements are kept in ``<work>/tour_times.json`` and not redone after a
kill (the script resumes). The section ``tour-times`` of ``results.md`` is rewritten.

Run:  python -m benchmarks.tour_times [--work DIR] [--only NAME ...] [--no-results]

Real data and weights are read from ``$LABELBRIDGE_SHARED`` (default ``../shared``);
without them the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common.paths import CAMVID_ROOT, IDD_ROOT, REPO, SHARED, WEIGHTS
from benchmarks.common.results import command_line, program, run_header, write_section

#: images per split, as published
CAMVID_SPLITS = {"train": 367, "val": 101, "test": 233}
IDD_TRAIN = 1403


@dataclass(frozen=True)
class Measure:
    """One tour command and how it is measured.

    Attributes:
        name: short id.
        tour: the command as the README shows it.
        args: the command run (``labelbridge`` arguments) in a scratch folder; ``{n}`` in
            an argument is the image limit of a slice.
        slices: ``(a, b)`` image limits of the two slice runs; ``None``: one full run.
        images_per_n: images a slice labels per unit of ``n`` (one per dataset entry).
        full_images: images of the full tour command (with ``slices``).
        datasets: for ``pseudo-label``: the config's dataset entries kept, each cut to
            its first ``n`` images (the config is rewritten into the scratch folder with
            the real data's paths).
    """

    name: str
    tour: str
    args: tuple[str, ...]
    slices: tuple[int, int] | None = None
    images_per_n: int = 1
    full_images: int = 0
    datasets: tuple[int, ...] = ()


def measures() -> list[Measure]:
    camvid, w = str(CAMVID_ROOT), WEIGHTS
    cfg = str(REPO / "configs")
    teacher_cfg = [
        f"{cfg}/camvid_teacher.yaml",
        "--set",
        f"datasets.0.root={camvid}",
        "--set",
        f"val.0.root={camvid}",
        "--set",
        f"model.weights={w / 'espnetv2_s_1.0_city_1024x512.pth'}",
        "--set",
        "output=teacher",
    ]
    return [
        Measure(
            "check",
            "labelbridge datasets check camvid --root .../camvid --json",
            ("datasets", "check", "camvid", "--root", camvid, "--json"),
        ),
        Measure(
            "evaluate",
            "labelbridge evaluate --checkpoint espnetv2_s_2.0_city_1024x512.pth --dataset "
            "camvid --split test --ontology camvid11_to_cityscapes --input-size 960x704",
            (
                "evaluate",
                "--checkpoint",
                str(w / "espnetv2_s_2.0_city_1024x512.pth"),
                "--dataset",
                "camvid",
                "--root",
                camvid,
                "--split",
                "test",
                "--ontology",
                "camvid11_to_cityscapes",
                "--input-size",
                "960x704",
                "--limit",
                "{n}",
                "--json",
            ),
            slices=(4, 24),
            full_images=CAMVID_SPLITS["test"],
        ),
        *(
            Measure(
                f"pseudo-{entry}",
                "labelbridge pseudo-label configs/pseudo_camvid_idd_to_cityscapes.yaml "
                f"(its {label} images)",
                ("pseudo-label", f"{cfg}/pseudo_camvid_idd_to_cityscapes.yaml"),
                slices=(1, 4),
                images_per_n=len(indices),
                full_images=full,
                datasets=indices,
            )
            for indices, entry, label, full in (
                (
                    (0, 1),
                    "camvid",
                    "CamVid train + val",
                    CAMVID_SPLITS["train"] + CAMVID_SPLITS["val"],
                ),
                ((2,), "idd", "IDD-Lite train", IDD_TRAIN),
            )
        ),
        Measure(
            "train-teacher",
            "labelbridge train configs/camvid_teacher.yaml --set epochs=5 --set steps_per_epoch=20",
            (
                "train",
                *teacher_cfg,
                "--set",
                "epochs=5",
                "--set",
                "steps_per_epoch=20",
                "--set",
                "trainer.accelerator=cpu",
            ),
        ),
    ]


def _timed_run(m: Measure, folder: Path, n: int | None) -> tuple[float, list[str]]:
    """Wall seconds of one run of ``m`` (slice ``n``) in a fresh ``folder``, and its args."""
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished earlier try: its time would not count
    folder.mkdir(parents=True)
    if m.datasets:
        args = _pseudo_config(m, folder, n or 0)
    else:
        args = [a.replace("{n}", str(n)) for a in m.args]
    exe = shutil.which("labelbridge") or "labelbridge"
    env = {**os.environ, "LABELBRIDGE_PROGRESS_INTERVAL": "60"}
    start = time.perf_counter()
    proc = subprocess.run([exe, *args], cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{m.name}: `labelbridge {shlex.join(args)}` exited {proc.returncode}:\n"
            f"{proc.stderr[-3000:]}"
        )
    return seconds, args


def run_measure(m: Measure, work: Path) -> dict[str, object]:
    """Time ``m`` (both slices, or the command once) and estimate the full command."""
    if m.slices is None:
        seconds, args = _timed_run(m, work / m.name, None)
        return {
            "commands": ["labelbridge " + shlex.join(args)],
            "seconds": [round(seconds, 1)],
            "full_seconds": round(seconds, 1),
        }
    (a, b), runs = m.slices, []
    for n in (a, b):
        seconds, args = _timed_run(m, work / f"{m.name}_{n}", n)
        runs.append((seconds, args))
    (t_a, args_a), (t_b, args_b) = runs
    per_image = max(0.0, (t_b - t_a) / ((b - a) * m.images_per_n))
    startup = max(0.0, t_a - per_image * a * m.images_per_n)
    return {
        "commands": ["labelbridge " + shlex.join(args_a), "labelbridge " + shlex.join(args_b)],
        "seconds": [round(t_a, 1), round(t_b, 1)],
        "images": [a * m.images_per_n, b * m.images_per_n],
        "per_image_seconds": round(per_image, 3),
        "startup_seconds": round(startup, 1),
        "full_seconds": round(startup + per_image * m.full_images, 1),
    }


def _pseudo_config(m: Measure, folder: Path, n: int) -> list[str]:
    """The pseudo-label slice as its own config file: the kept dataset entries of the
    tour's config, on the real data, their first ``n`` images each, the published
    teacher, on the CPU; returns the CLI arguments."""
    import yaml

    cfg = yaml.safe_load(Path(m.args[1]).read_text(encoding="utf-8"))
    roots = {"camvid": str(CAMVID_ROOT), "idd_lite": str(IDD_ROOT)}
    kept = []
    for i in m.datasets:
        entry = dict(cfg["datasets"][i])
        entry.update(root=roots[entry["reader"]], limit=n)
        kept.append(entry)
    cfg.update(
        datasets=kept,
        output="pseudo",
        device="cpu",
        teacher={**cfg["teacher"], "checkpoint": str(WEIGHTS / "espnetv2_s_2.0_city_1024x512.pth")},
    )
    path = folder / "pseudo.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return ["pseudo-label", str(path)]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def markdown(results: dict[str, dict[str, object]], ms: list[Measure], command: str) -> str:
    lines = [
        "### Tour commands: wall time on this machine",
        "",
        run_header(command),
        "Each command ran through the console script on the real data. A long one ran on its "
        "first a and first b images: the time per image is the difference of the two wall "
        "times over b - a images, the start-up (imports, model loading) the rest of the first "
        "run; the full command's estimate is start-up + its images x time per image.",
        "",
        "| tour command | measured | per image | full command |",
        "|---|---|---:|---:|",
    ]
    for m in ms:
        r = results.get(m.name)
        if r is None:
            lines.append(f"| `{m.tour}` | not measured | | |")
            continue
        secs = [float(x) for x in r["seconds"]]  # type: ignore[union-attr]
        if m.slices is None:
            lines.append(f"| `{m.tour}` | the command itself | | {_duration(secs[0])} |")
            continue
        imgs = r["images"]
        lines.append(
            f"| `{m.tour}` | {imgs[0]} and {imgs[1]} images: {secs[0]:.1f} s, {secs[1]:.1f} s "
            f"(start-up {float(r['startup_seconds']):.1f} s) | {float(r['per_image_seconds']):.2f} s | "
            f"{_duration(float(r['full_seconds']))} ({m.full_images} images, estimate) |"
        )
    lines += ["", "Commands run:", ""]
    for m in ms:
        for c in results.get(m.name, {}).get("commands", []):  # type: ignore[union-attr]
            lines.append(f"- {m.name}: `{c}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/labelbridge_tour_times"))
    parser.add_argument("--only", nargs="*", default=None, help="measure only these")
    parser.add_argument("--no-results", action="store_true", help="do not write results.md")
    args = parser.parse_args()
    if not (CAMVID_ROOT.is_dir() and IDD_ROOT.is_dir() and WEIGHTS.is_dir()):
        print(f"skipped: real data and weights not found under {SHARED}")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    store = args.work / "tour_times.json"
    results: dict[str, dict[str, object]] = json.loads(store.read_text()) if store.is_file() else {}
    ms = measures()
    for m in ms:
        if m.name in results or (args.only and m.name not in args.only):
            continue
        print(f"{m.name}: running", flush=True)
        results[m.name] = run_measure(m, args.work)
        print(f"{m.name}: {results[m.name]['seconds']} s", flush=True)
        tmp = store.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(store)
    text = markdown(results, ms, command_line(__file__))
    print(text)
    if not args.no_results:
        write_section("tour-times", text)


if __name__ == "__main__":
    main()
