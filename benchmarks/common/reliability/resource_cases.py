"""Resource faults (:data:`RESOURCE_CASES`): out of memory at a TTA scale (with and
without a fallback left) and a full disk while writing labels; each gives a clear error
or :data:`~.outcomes.RECORDED_FALLBACK`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelbridge.errors import UserError

from .outcomes import CLEAR_ERROR, FAILED, RECORDED_FALLBACK, CaseResult
from .pseudo_cases import label_files, pseudo_config, tiny_teacher
from .stages import audit_outputs, make_camvid_images


class OutOfMemoryAt:
    """Wraps a model; its forward raises a CUDA-style out-of-memory error for inputs of
    height ``height`` with more than ``max_batch`` images (``max_batch=0``: always)."""

    def __init__(self, model: Any, *, height: int, max_batch: int) -> None:
        import torch

        class _Wrapped(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner
                self.num_classes = inner.num_classes

            def forward(self, x: Any) -> Any:
                if x.shape[-2] == height and x.shape[0] > max_batch:
                    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
                return self.inner(x)

        self.module = _Wrapped(model)


def oom_fallback_case(scratch: Path) -> CaseResult:
    """Scale 2.0 runs out of memory when batched: it must fall back to one image per
    pass, keep the scale (labels equal those of a run without the fault) and list the
    fallback in the report."""
    from labelbridge.pseudo.run import Teacher, run_pseudo_label

    data = make_camvid_images(scratch / "data", count=3, size=(16, 12))
    base = tiny_teacher()
    changes = {"tta": {"flip": True, "scales": [1.0, 2.0]}}
    run_pseudo_label(pseudo_config(data, scratch / "ref", **changes), teacher=base)
    faulty = Teacher(
        OutOfMemoryAt(base.model, height=24, max_batch=1).module.eval(),
        base.taxonomy,
        base.description,
    )
    try:
        (summary,) = run_pseudo_label(
            pseudo_config(data, scratch / "out", **changes), teacher=faulty
        )
    except Exception as exc:  # noqa: BLE001
        return CaseResult(
            "resource",
            "TTA scale out of memory: fallback",
            "-",
            FAILED,
            f"{type(exc).__name__}: {exc}",
        )
    fallbacks = summary.report.get("fallbacks", [])
    same = label_files(scratch / "out" / "cv") == label_files(scratch / "ref" / "cv")
    if not same or [f["scale"] for f in fallbacks] != [2.0]:
        return CaseResult(
            "resource",
            "TTA scale out of memory: fallback",
            "-",
            FAILED,
            f"same labels: {same}; fallbacks: {fallbacks}",
        )
    return CaseResult(
        "resource",
        "TTA scale out of memory: fallback",
        "-",
        RECORDED_FALLBACK,
        json.dumps(fallbacks),
    )


def oom_no_fallback_case(scratch: Path) -> CaseResult:
    """Scale 2.0 runs out of memory even with one image on the CPU: the run must stop with
    an error naming the scale, and write no label."""
    from labelbridge.pseudo.run import Teacher, run_pseudo_label

    data = make_camvid_images(scratch / "data", count=2, size=(16, 12))
    base = tiny_teacher()
    faulty = Teacher(
        OutOfMemoryAt(base.model, height=24, max_batch=0).module.eval(),
        base.taxonomy,
        base.description,
    )
    name = "TTA scale out of memory: nothing left to try"
    try:
        run_pseudo_label(
            pseudo_config(data, scratch / "out", tta={"flip": True, "scales": [1.0, 2.0]}),
            teacher=faulty,
        )
    except Exception as exc:  # noqa: BLE001
        written = label_files(scratch / "out" / "cv") if (scratch / "out" / "cv").is_dir() else {}
        if "2.0" in str(exc) and "out of memory" in str(exc) and not written:
            return CaseResult(
                "resource", name, "-", CLEAR_ERROR, f"{type(exc).__name__}: {str(exc)[:200]}"
            )
        return CaseResult(
            "resource",
            name,
            "-",
            FAILED,
            f"{type(exc).__name__}: {exc}; written: {sorted(written)}",
        )
    return CaseResult("resource", name, "-", FAILED, "no error: the scale was dropped silently")


def disk_full_case(scratch: Path) -> CaseResult:
    """The disk fills up after a few label files: the run must fail with a clear error,
    leave a manifest that parses and lists only complete files, and resume to the same
    bytes as an undisturbed run."""
    import errno
    from unittest import mock

    from labelbridge import files as writer_mod
    from labelbridge.pseudo.manifest import read_manifest
    from labelbridge.pseudo.run import run_pseudo_label

    name = "disk full while writing"
    data = make_camvid_images(scratch / "data", count=6, size=(16, 12))
    run_pseudo_label(pseudo_config(data, scratch / "ref"), teacher=tiny_teacher())
    real_open = open
    count = {"n": 0}

    def full_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and str(path).endswith(writer_mod.TEMP_SUFFIX):
            count["n"] += 1
            if count["n"] >= 4:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    out = scratch / "out"
    try:
        with mock.patch.object(writer_mod, "open", full_open, create=True):
            run_pseudo_label(pseudo_config(data, out), teacher=tiny_teacher())
    except UserError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001
        return CaseResult(
            "resource", name, "-", FAILED, f"{type(exc).__name__} without a user message: {exc}"
        )
    else:
        return CaseResult("resource", name, "-", FAILED, "no error raised")
    problems = audit_outputs(out)
    try:
        records = read_manifest(out / "cv" / "manifest.jsonl")
    except Exception as exc:  # noqa: BLE001
        return CaseResult("resource", name, "-", FAILED, f"manifest corrupted: {exc}")
    run_pseudo_label(pseudo_config(data, out), teacher=tiny_teacher())
    same = label_files(out / "cv") == label_files(scratch / "ref" / "cv")
    if problems or not same or "space" not in message.lower():
        return CaseResult(
            "resource",
            name,
            "-",
            FAILED,
            f"problems {problems}; resumed identical: {same}; {message}",
        )
    return CaseResult(
        "resource", name, "-", CLEAR_ERROR, f"{message} ({len(records)} records kept)"
    )


RESOURCE_CASES: dict[str, Callable[[Path], CaseResult]] = {
    "oom_fallback": oom_fallback_case,
    "oom_no_fallback": oom_no_fallback_case,
    "disk_full": disk_full_case,
}
