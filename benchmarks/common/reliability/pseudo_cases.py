"""Bad input through the pseudo-labeller (:func:`pseudo_case`): the corruptions of
:mod:`~.corruptions` in a tiny CamVid folder, and the tiny teacher, its checkpoint and the
small pseudo-labelling config the cases use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labelbridge.errors import UserError

from .corruptions import corrupt, layout_copy
from .outcomes import CLEAR_ERROR, FAILED, RECORDED_SKIP, CaseResult

#: Mapping used by the pseudo-labelling cases (CamVid labels -> Cityscapes teacher).
PSEUDO_MAPPING = "camvid11_to_cityscapes"


def tiny_teacher(taxonomy: str = "cityscapes", seed: int = 0) -> Any:
    """A :class:`~labelbridge.pseudo.run.Teacher` wrapping a seeded TinySegNet."""
    import torch

    from labelbridge.models import TinySegNet
    from labelbridge.pseudo.run import Teacher
    from labelbridge.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    torch.manual_seed(seed)
    return Teacher(
        model=TinySegNet(tax.num_classes).eval(), taxonomy=tax, description={"model": "tiny"}
    )


def tiny_checkpoint(path: Path, taxonomy: str) -> Path:
    """Save a TinySegNet labelbridge checkpoint predicting ``taxonomy``."""
    from labelbridge.models import save_checkpoint
    from labelbridge.taxonomy import load_taxonomy

    teacher = tiny_teacher(taxonomy)
    return save_checkpoint(path, teacher.model, spec="tiny", taxonomy=load_taxonomy(taxonomy))


def pseudo_config(data: Path, out: Path, *, on_error: str = "raise", **changes: Any) -> Any:
    """A small pseudo-labelling config for a CamVid-layout folder (one TTA pass, no previews)."""
    from labelbridge.config.pseudo import PseudoLabelConfig

    raw: dict[str, Any] = {
        "teacher": {"model": "tiny", "taxonomy": "cityscapes"},
        "datasets": [
            {
                "name": "cv",
                "reader": "camvid",
                "root": str(data),
                "split": "train",
                "ontology": PSEUDO_MAPPING,
                "on_error": on_error,
            }
        ],
        "tta": {"flip": False, "scales": [1.0]},
        "outputs": {"previews": 0},
        "output": str(out),
        "device": "cpu",
        "num_workers": 0,
        "threads": 1,
    }
    raw.update(changes)
    return PseudoLabelConfig.model_validate(raw)


def label_files(folder: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of the label PNGs under ``folder`` (no previews)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*.png"))
        if "previews" not in p.relative_to(folder).parts
    }


_PSEUDO_REFERENCE: dict[str, dict[str, bytes]] = {}


def pseudo_reference(cache: Path) -> dict[str, bytes]:
    """Label PNGs of an undamaged run over the tiny CamVid fixture (computed once per cache)."""
    from labelbridge.pseudo.run import run_pseudo_label

    if str(cache) not in _PSEUDO_REFERENCE:
        fx = layout_copy("camvid", cache / "pseudo_ref_data", cache=cache)
        run_pseudo_label(pseudo_config(fx.root, cache / "pseudo_ref"), teacher=tiny_teacher())
        _PSEUDO_REFERENCE[str(cache)] = label_files(cache / "pseudo_ref" / "cv")
    return _PSEUDO_REFERENCE[str(cache)]


def pseudo_case(corruption: str, mode: str, scratch: Path, *, cache: Path) -> CaseResult:
    """Pseudo-label a tiny CamVid folder with one damaged sample under ``on_error=mode``.

    A clear error must name the damaged file; a skip must be counted in the summary
    and listed in ``report.json``. Either way no label file may be written for the
    damaged image and every written label must equal the undamaged run's bytes.
    """
    from labelbridge.pseudo.run import run_pseudo_label

    reference = pseudo_reference(cache)
    fx = layout_copy("camvid", scratch / "camvid", cache=cache)
    key, named = corrupt(fx, "train", corruption)
    out = scratch / "out"
    name = f"camvid/{corruption}"

    def fail(why: str) -> CaseResult:
        return CaseResult("pseudo-label", name, mode, FAILED, why)

    def written_ok() -> str:
        got = label_files(out / "cv") if (out / "cv").is_dir() else {}
        if f"{key}.png" in got:
            return f"a label was written for the damaged image {key}"
        wrong = sorted(k for k, v in got.items() if reference.get(k) != v)
        return f"labels differ from the undamaged run: {wrong}" if wrong else ""

    try:
        (summary,) = run_pseudo_label(
            pseudo_config(fx.root, out, on_error=mode), teacher=tiny_teacher()
        )
    except UserError as exc:
        message = str(exc)
        if str(named) not in message:
            return fail(f"error does not name {named}: {message}")
        if mode == "skip" and corruption != "empty_split":
            return fail(f"on_error: skip raised instead of skipping: {message}")
        return (
            CaseResult("pseudo-label", name, mode, CLEAR_ERROR, message)
            if not written_ok()
            else fail(written_ok())
        )
    except Exception as exc:  # noqa: BLE001 - anything else is a failure of the case
        return fail(f"{type(exc).__name__} without a user message: {exc}")
    if mode == "raise":
        return fail("no error raised")
    problem = written_ok()
    if problem:
        return fail(problem)
    report = json.loads((out / "cv" / "report.json").read_text(encoding="utf-8"))
    listed = [
        s for s in report.get("skipped", []) if s.get("key") == key or str(named) in json.dumps(s)
    ]
    if not listed:
        return fail(f"skip of {key} not listed in report.json (skipped: {report.get('skipped')})")
    if summary.failed + len(report.get("skipped", [])) == 0:
        return fail("skip not counted")
    return CaseResult("pseudo-label", name, mode, RECORDED_SKIP, listed[0].get("error", ""))
