"""Interruption (:func:`kill_resume_trials`): a stage run by the real CLI is killed with
SIGKILL after a random delay, re-run to completion, and its outputs are compared with an
uninterrupted run (:func:`stage_fingerprint`) and audited for partial files
(:func:`~.stages.audit_outputs`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .stages import CLI, SETUPS, TEMP_PATTERNS, StageSetup, audit_outputs, run_to_end


def _spawn(setup: StageSetup, work: Path, **popen: Any) -> subprocess.Popen:
    """The stage's command through the console script in ``work`` (stdout discarded)."""
    exe = shutil.which(CLI) or CLI
    return subprocess.Popen(
        [exe, *setup.args], cwd=work, env=_env(), stdout=subprocess.DEVNULL, **popen
    )


def _checkpoint_step(path: Path) -> int | None:
    """``global_step`` stored in a Lightning checkpoint (``None`` when absent)."""
    import torch

    if not path.is_file():
        return None
    data = torch.load(path, map_location="cpu", weights_only=False)
    return int(data["global_step"])


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_and_kill(setup: StageSetup, work: Path, *, changes: int, jitter: float) -> float | None:
    """Start the stage, watch its output folder, and SIGKILL its process group
    ``jitter`` seconds after the ``changes``-th change of its outputs.

    Returns:
        seconds from the start to the kill, or ``None`` when the stage finished first.
    """
    out = work / setup.output
    start = time.perf_counter()
    proc = _spawn(setup, work, stderr=subprocess.DEVNULL, start_new_session=True)
    seen, count = _snapshot(out), 0
    while proc.poll() is None:
        now = _snapshot(out)
        if now != seen:
            count += 1
            seen = now
            if count >= changes:
                time.sleep(jitter)
                if proc.poll() is not None:
                    break
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return time.perf_counter() - start
        time.sleep(0.05)
    proc.wait()
    return None


def stage_fingerprint(stage: str, output: Path) -> dict[str, Any]:
    """What must equal between an interrupted-and-resumed run and an uninterrupted one.

    * pseudo-label: the bytes of every label, confidence and soft-label file;
    * train: the global step and epoch of each stage's ``last.ckpt``, the steps of its
      validation history, and the weights (every tensor of the state dict, bit for bit)
      of each stage's ``last.ckpt`` and of ``final.ckpt``;
    * pipeline: the finished stages of ``state.json``, the bytes of every pseudo-label
      file, and the steps and weights of every training stage as for train.
    """
    if stage == "pseudo-label":
        return {"files": _pseudo_bytes(output)}
    if stage == "train":
        return {"steps": _train_steps(output), "weights": _train_weights(output)}
    state = json.loads((output / "state.json").read_text(encoding="utf-8"))
    done = sorted(k for k, v in state["stages"].items() if v.get("status") == "done")
    pseudo = {
        f"{p.relative_to(output).as_posix()}/{name}": digest
        for p in sorted(output.glob("iter*/pseudo_*"))
        for name, digest in _pseudo_bytes(p).items()
    }
    return {
        "done": done,
        "pseudo": pseudo,
        "steps": _train_steps(output),
        "weights": _train_weights(output),
    }


def weights_digest(checkpoint: Path) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a checkpoint's state dict (a
    Lightning checkpoint's ``state_dict`` or a bare one), in key order."""
    import hashlib

    import torch

    data = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = data.get("state_dict", data) if isinstance(data, dict) else data
    h = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            continue
        t = tensor.detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _train_weights(run: Path) -> dict[str, str]:
    """``{checkpoint path: weights digest}`` of every stage's ``last.ckpt`` and every
    ``final.ckpt`` under ``run``."""
    paths = sorted([*run.rglob("checkpoints/last.ckpt"), *run.rglob("final.ckpt")])
    return {p.relative_to(run).as_posix(): weights_digest(p) for p in paths}


def _pseudo_bytes(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and p.suffix in (".png", ".npz")
        and "previews" not in p.relative_to(folder).parts
        and not any(p.match(t) for t in TEMP_PATTERNS)
    }


def _train_steps(run: Path) -> dict[str, Any]:
    out = {}
    for stage_dir in sorted(p.parent.parent for p in run.rglob("checkpoints/last.ckpt")):
        import torch

        data = torch.load(
            stage_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
        )
        marker = stage_dir / "stage_done.json"
        history = json.loads(marker.read_text())["history"] if marker.is_file() else None
        out[stage_dir.relative_to(run).as_posix()] = {
            "global_step": int(data["global_step"]),
            "epoch": int(data["epoch"]),
            "history_steps": None if history is None else [h.get("step") for h in history],
        }
    return out


def _last_checkpoints(output: Path) -> dict[str, int | None]:
    return {
        p.relative_to(output).as_posix(): _safe_step(p)
        for p in sorted(output.rglob("checkpoints/last.ckpt"))
    }


def _safe_step(path: Path) -> int | None:
    try:
        return _checkpoint_step(path)
    except Exception:  # noqa: BLE001 - a corrupt checkpoint is reported by the audit
        return None


def progress(stage: str, output: Path) -> str:
    """How far a stage got: manifest records, checkpoint steps, finished pipeline stages."""
    if not output.exists():
        return "nothing written"
    if stage == "pseudo-label":
        lines = sum(
            len(p.read_text(encoding="utf-8").splitlines()) for p in output.rglob("manifest*.jsonl")
        )
        return f"{lines} images recorded"
    steps = ", ".join(
        f"{k.split('/checkpoints')[0]}@{v}" for k, v in _last_checkpoints(output).items()
    )
    if stage == "train":
        return f"checkpoints: {steps or 'none'}"
    state = output / "state.json"
    done = 0
    if state.is_file():
        try:
            done = sum(
                v.get("status") == "done" for v in json.loads(state.read_text())["stages"].values()
            )
        except (json.JSONDecodeError, KeyError):
            return "state.json unreadable"
    return f"{done} stages done; checkpoints: {steps or 'none'}"


def _csv_logs(output: Path) -> set[Path]:
    return set(output.rglob("logs/csv*/metrics.csv")) if output.exists() else set()


def _first_step(metrics_csv: Path) -> int | None:
    """The ``step`` of the first row of a Lightning CSV log (``None``: no row yet)."""
    import csv

    try:
        with open(metrics_csv, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("step") not in (None, ""):
                    return int(float(row["step"]))
    except (OSError, ValueError):
        return None
    return None


def continuation_problems(
    output: Path, before: dict[str, int | None], logs_before: set[Path]
) -> list[str]:
    """Training stages that did not continue from their checkpoint: a CSV log started by
    the last invocation in a stage that had a ``last.ckpt`` must begin at that
    checkpoint's global step (a restart from scratch would begin near 0)."""
    problems = []
    for log in sorted(_csv_logs(output) - logs_before):
        stage_dir = log.parent.parent.parent  # <stage>/logs/csv_N/metrics.csv
        key = (stage_dir / "checkpoints" / "last.ckpt").relative_to(output).as_posix()
        expected = before.get(key)
        if expected is None:  # a fresh start, not a resume
            continue
        first = _first_step(log)
        if first is not None and first != expected:
            problems.append(
                f"{log.relative_to(output)}: started at step {first}, checkpoint was at {expected}"
            )
    return problems


@dataclass
class TrialResult:
    """One kill-and-resume trial.

    Attributes:
        stage: the stage.
        delay: seconds after the start at which SIGKILL was sent.
        progress: how far the stage had got when it was killed.
        after_kill: problems of the outputs right after the kill (temp files allowed).
        after_resume: problems after the final resume (none allowed).
        steps_back: training checkpoints whose global step went backwards (restarted).
        identical: the resumed outputs equal the uninterrupted run's.
        restarts: runs that finished before their kill and were started over from
            scratch before this kill.
        differing: entries of :func:`stage_fingerprint` that differ (files lost or
            changed, checkpoints at another step).
        detail: the first difference, when not identical.
    """

    stage: str
    delay: float
    progress: str
    after_kill: list[str] = field(default_factory=list)
    after_resume: list[str] = field(default_factory=list)
    steps_back: list[str] = field(default_factory=list)
    identical: bool = False
    restarts: int = 0
    differing: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.identical and not self.after_kill and not self.after_resume and not self.steps_back
        )


def _snapshot(folder: Path) -> frozenset[tuple[str, int, int]]:
    if not folder.exists():
        return frozenset()
    items = []
    for p in folder.rglob("*"):
        try:
            st = p.stat()
        except OSError:  # removed while listing
            continue
        if p.is_file():
            items.append((str(p), st.st_size, st.st_mtime_ns))
    return frozenset(items)


def _timed_reference(setup: StageSetup, work: Path) -> tuple[int, float]:
    """Run the stage to the end, watching its output folder.

    Returns:
        the number of changes of its outputs seen (polling every 50 ms) and its wall time.
    """
    out = work / setup.output
    start = time.perf_counter()
    proc = _spawn(setup, work, stderr=subprocess.PIPE, text=True)
    changes, seen = 0, frozenset()
    while proc.poll() is None:
        now = _snapshot(out)
        if now != seen:
            changes += 1
            seen = now
        time.sleep(0.05)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"labelbridge {' '.join(setup.args)} failed ({proc.returncode}): {proc.stderr.read()[-2000:]}"
        )  # type: ignore[union-attr]
    return changes, total


def kill_resume_trials(
    stage: str, scratch: Path, *, trials: int = 5, seed: int = 0
) -> tuple[list[TrialResult], float]:
    """SIGKILL ``stage`` at ``trials`` random moments, resuming in between; compare with an
    uninterrupted run.

    The trials are chained in one working folder: each kill interrupts the re-run that
    followed the previous kill, so later trials also test resuming a run that was itself
    resumed. The uninterrupted run is watched first: its output folder changes ``N``
    times (polled every 50 ms). Each kill comes a random 0-0.3 s after a random change
    ``1..N*r`` of the running command's outputs (``r``: share of trials left, as the
    remaining work shrinks), so the moments follow the work, not the machine's load. A
    run that finishes before its kill is started again from scratch (so every trial is a
    real kill). After each kill the outputs are audited (temporary files and
    a torn manifest tail allowed) and every training checkpoint's global step is checked
    against the one before (it must never go back: a restart from scratch would); after
    the final resume the outputs are audited strictly and compared with the
    uninterrupted run.

    Returns:
        one :class:`TrialResult` per kill and the uninterrupted run's wall time.
    """
    import random

    rng = random.Random(seed)
    ref_work, work = scratch / "reference", scratch / "interrupted"
    ref_work.mkdir(parents=True)
    work.mkdir(parents=True)
    setup = SETUPS[stage](ref_work)
    SETUPS[stage](work)
    changes, total = _timed_reference(setup, ref_work)
    reference = stage_fingerprint(stage, ref_work / setup.output)
    output = work / setup.output
    results: list[TrialResult] = []
    attempts = restarts = 0
    while len(results) < trials and attempts < 3 * trials:
        attempts += 1
        share = (trials - len(results)) / trials
        at_change = rng.randint(1, max(1, round(changes * share)))
        before, logs = _last_checkpoints(output), _csv_logs(output)
        delay = run_and_kill(setup, work, changes=at_change, jitter=rng.uniform(0.0, 0.3))
        if delay is None:  # finished first: start over, so the next kill is a real one
            shutil.rmtree(output, ignore_errors=True)
            restarts += 1
            continue
        after = _last_checkpoints(output)
        back = [
            f"{k}: step {before[k]} -> {after.get(k)}"
            for k in before
            if before[k] is not None and (after.get(k) is None or after[k] < before[k])
        ]
        back += continuation_problems(output, before, logs)
        problems = audit_outputs(output, allow_temp=True)
        results.append(
            TrialResult(stage, round(delay, 2), progress(stage, output), problems, steps_back=back)
        )
        results[-1].restarts = restarts
    before, logs = _last_checkpoints(output), _csv_logs(output)
    run_to_end(setup, work)
    after = _last_checkpoints(output)
    final_back = continuation_problems(output, before, logs)
    final_back += [
        f"{k}: step {before[k]} -> {after.get(k)}"
        for k in before
        if before[k] is not None and (after.get(k) or -1) < before[k]
    ]
    final_problems = audit_outputs(output)
    got = stage_fingerprint(stage, output)
    identical = got == reference
    detail = "" if identical else _diff(reference, got)
    differing = _count_diff(reference, got)
    for r in results:
        r.after_resume = final_problems
        r.identical = identical
        r.differing = differing
        r.detail = detail
    if results:
        results[-1].steps_back += final_back
    return results, total


def _count_diff(a: Any, b: Any) -> int:
    """Leaf entries that differ between two nested dicts (missing counts as different)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return sum(_count_diff(a.get(k), b.get(k)) for k in set(a) | set(b))
    return int(a != b)


def _diff(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _diff(a.get(k), b.get(k), f"{path}/{k}")
        return ""
    return f"{path}: uninterrupted {str(a)[:200]} vs resumed {str(b)[:200]}"
