"""What a pipeline run reports: one row per model, the table, ``results.md``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from labelbridge.config.pipeline import PipelineConfig
from labelbridge.data.pseudo_folder import REPORT_FILE

log = logging.getLogger(__name__)

RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"

#: Row titles of the results table per arm.
ARM_TITLES: dict[str, str] = {
    "priors": "student with priors",
    "no_priors": "Naive Student (no priors)",
}

#: What a student's title adds for its target (``hard`` adds nothing).
TARGET_TITLES: dict[str, str] = {
    "soft": " (soft labels)",
    "hard+partial": " (hard + partial labels)",
}
#: Title of the student that learns from the extras' own labels alone.
PARTIAL_TITLE = "student on partial labels (no teacher)"


def student_title(arm: str | None, target: str) -> str:
    """The row title of the student of ``arm`` learning from ``target``."""
    if target == "partial" or arm is None:
        return PARTIAL_TITLE
    return ARM_TITLES[arm] + TARGET_TITLES.get(target, "")


# --------------------------------------------------------------------------- results


@dataclass
class ModelResult:
    """One row of the results table.

    Attributes:
        model: row title (``teacher``, ``student with priors`` ...).
        iteration: round (0 = the teacher).
        arm: ``priors`` / ``no_priors`` / ``None``.
        checkpoint: the evaluated checkpoint (or teacher description).
        miou: ``{evaluation label: mIoU in [0, 1]}`` (``None`` where NaN).
        per_class_iou: ``{evaluation label: {class: IoU or None}}``.
        target: what a student learnt the extras from (``None`` for the teacher).
    """

    model: str
    iteration: int
    arm: str | None
    checkpoint: str
    miou: dict[str, float | None] = field(default_factory=dict)
    per_class_iou: dict[str, dict[str, float | None]] = field(default_factory=dict)
    target: str | None = None


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced.

    Attributes:
        run_dir: the run folder.
        rows: teacher first, then each round's students.
        evaluation: the evaluation labels (table columns).
        pseudo_stats: ``{stage: {extra: {"changed_by_priors": share, "ignore": share}}}``.
        table: the Markdown table (also in ``results.md``).
        results_md: path of ``results.md``.
        results_json: path of ``results.json``.
        executed: stages run (or resumed) by this call; the others were skipped as done.
        recorded: whether this process wrote the run's state and results (process 0 of
            those started together; the others hold them in memory only).
    """

    run_dir: Path
    rows: list[ModelResult]
    evaluation: list[str]
    pseudo_stats: dict[str, dict[str, dict[str, float | None]]]
    table: str
    results_md: Path
    results_json: Path
    executed: list[str] = field(default_factory=list)
    recorded: bool = True

    def row(self, iteration: int, arm: str | None, target: str = "hard") -> ModelResult:
        """The row of the student of ``arm`` learning from ``target`` in round
        ``iteration`` (round 0: the teacher; ``arm=None, target="partial"``: the
        partial-label student)."""
        for r in self.rows:
            if r.iteration == iteration and r.arm == arm and (iteration == 0 or r.target == target):
                return r
        raise KeyError(f"no result for iteration {iteration}, arm {arm!r}, target {target!r}")


def _fmt(value: float | None, base: float | None) -> str:
    if value is None:
        return "n/a"
    text = f"{100 * value:.1f}"
    if base is not None:
        text += f" ({100 * (value - base):+.1f})"
    return text


def format_table(rows: list[ModelResult], evaluation: list[str]) -> str:
    """Markdown table: one row per model, mIoU x 100 per evaluation set; student rows
    also give the difference to the teacher."""
    teacher = next((r for r in rows if r.iteration == 0), None)
    header = "| model | round | " + " | ".join(f"{e} mIoU" for e in evaluation) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(evaluation)]
    for r in rows:
        cells = []
        for e in evaluation:
            base = None if teacher is None or r is teacher else teacher.miou.get(e)
            cells.append(_fmt(r.miou.get(e), base))
        lines.append(f"| {r.model} | {r.iteration} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_pseudo_stats(folder: Path, extras: list[str]) -> dict[str, dict[str, float | None]]:
    stats: dict[str, dict[str, float | None]] = {}
    for name in extras:
        report = folder / name / REPORT_FILE
        if not report.is_file():
            continue
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
            stats[name] = {
                "changed_by_priors": data["changed_by_priors"]["share_of_labelled"],
                "ignore": data["pixels"]["ignore_share"],
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: cannot read the pseudo-label report: %s", report, exc)
    return stats


def results_markdown(
    cfg: PipelineConfig, table: str, pseudo_stats: dict[str, dict[str, dict]]
) -> str:
    lines = [
        f"# Results: {cfg.run_dir}",
        "",
        f"mIoU (%) in taxonomy `{cfg.taxonomy}`; sets with an ontology are scored through its "
        "projection. Student rows give the difference to the teacher in brackets.",
        "",
        table,
        "",
    ]
    if pseudo_stats:
        lines += [
            "## Pseudo-labels",
            "",
            "| stage | extra dataset | changed by priors | ignore |",
            "|---|---|---:|---:|",
        ]
        for stage, per_extra in pseudo_stats.items():
            for extra, s in per_extra.items():
                changed = s.get("changed_by_priors")
                ignore = s.get("ignore")
                lines.append(
                    f"| {stage} | {extra} | "
                    f"{'n/a' if changed is None else f'{100 * changed:.1f}%'} | "
                    f"{'n/a' if ignore is None else f'{100 * ignore:.1f}%'} |"
                )
        lines.append("")
    return "\n".join(lines)
