"""Seed statistics and the Markdown of the real-data benchmarks: mIoU per arm and set,
per-class IoU, the key numbers of the pseudo-labels, and the results section they make."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common.figures import previews_note


@dataclass
class Summary:
    """Mean and range of one number over seeds (values in percent)."""

    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else math.nan

    def cell(self) -> str:
        """``mean (min-max)`` with one decimal, or the single value."""
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return f"{self.values[0]:.1f}"
        return f"{self.mean:.1f} ({self.lo:.1f}–{self.hi:.1f})"

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "mean": self.mean, "min": self.lo, "max": self.hi}


def pct(value: float | None) -> float | None:
    """``[0, 1]`` -> percent, ``None`` kept."""
    return None if value is None else 100.0 * value


def summarize(results: dict[str, list[dict[str, Any]]], set_label: str) -> dict[str, Summary]:
    """``{arm: [per-seed eval dict]}`` -> ``{arm: Summary of mIoU (%) on set_label}``."""
    out = {}
    for arm, evals in results.items():
        vals = [pct(e[set_label]["mIoU"]) for e in evals if e[set_label]["mIoU"] is not None]
        out[arm] = Summary([v for v in vals if v is not None])
    return out


def miou_table(
    results: dict[str, list[dict[str, Any]]], sets: Sequence[str], titles: dict[str, str]
) -> str:
    """Markdown: one row per arm, mIoU mean (min-max) per set, then the per-seed values."""
    lines = [
        "| arm | seeds | " + " | ".join(f"{s} mIoU" for s in sets) + " | per-seed values |",
        "|---|---:|" + "---:|" * len(sets) + "---|",
    ]
    for arm, evals in results.items():
        cells = [summarize({arm: evals}, s)[arm].cell() for s in sets]
        per_seed = "; ".join(
            f"{s}: "
            + ", ".join(
                "n/a" if e[s]["mIoU"] is None else f"{100 * e[s]['mIoU']:.1f}" for e in evals
            )
            for s in sets
        )
        lines.append(
            f"| {titles.get(arm, arm)} | {len(evals)} | " + " | ".join(cells) + f" | {per_seed} |"
        )
    return "\n".join(lines)


def head_to_head(
    results: dict[str, list[dict[str, Any]]],
    sets: Sequence[str],
    arms: Sequence[str],
    names: dict[str, str],
    *,
    base: str,
) -> list[str]:
    """Markdown lines comparing ``arms`` (shown by their ``names``) on each set: the
    ranking by seed mean, each arm's difference to ``base`` (seed means), and, with two
    seeds or more, whether it lies beyond the seed spread (this arm's worst seed above
    ``base``'s best, or its best below ``base``'s worst)."""
    lines = []
    for set_label in sets:
        summ = summarize(results, set_label)
        present = [a for a in arms if a in summ and summ[a].values]
        if base not in present:
            continue
        ranked = sorted(present, key=lambda a: summ[a].mean, reverse=True)
        parts = []
        for arm in ranked:
            if arm == base:
                parts.append(f"{names[arm]} {summ[arm].mean:.1f}")
                continue
            a, b = summ[arm], summ[base]
            spread = ""
            if min(len(a.values), len(b.values)) > 1:
                beyond = a.lo > b.hi or a.hi < b.lo
                spread = ", beyond the seed spread" if beyond else ", within the seed spread"
            parts.append(
                f"{names[arm]} {a.mean:.1f} ({a.mean - b.mean:+.1f} vs {names[base]}{spread})"
            )
        lines.append(f"- {set_label}: " + " > ".join(parts))
    return lines


def per_class_table(
    results: dict[str, list[dict[str, Any]]], set_label: str, titles: dict[str, str]
) -> str:
    """Markdown: per-class IoU (%) on one set, mean over seeds, one row per arm."""
    first = next(iter(results.values()))[0][set_label]["per_class_iou"]
    classes = list(first)
    lines = ["| arm | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
    for arm, evals in results.items():
        cells = []
        for c in classes:
            vals = [e[set_label]["per_class_iou"].get(c) for e in evals]
            vals = [v for v in vals if v is not None]
            cells.append(f"{100 * statistics.fmean(vals):.1f}" if vals else "n/a")
        lines.append(f"| {titles.get(arm, arm)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_sections(
    results: dict[str, list[dict[str, Any]]], sets: Sequence[str], titles: dict[str, str]
) -> list[str]:
    """Markdown lines: a per-class IoU table (:func:`per_class_table`) for every set."""
    lines: list[str] = []
    for s in sets:
        lines += [
            f"### Per-class IoU (%), {s} (mean over seeds)",
            "",
            per_class_table(results, s, titles),
            "",
        ]
    return lines


def pseudo_report_summary(folder: Path) -> dict[str, Any] | None:
    """Key numbers of a pseudo-label ``report.json`` (``None`` when absent)."""
    path = folder / "report.json"
    if not path.is_file():
        return None
    rep = json.loads(path.read_text(encoding="utf-8"))
    agree = rep.get("agreement_with_extra_gt", {})
    return {
        "images": rep["images"]["finished"],
        "changed_by_priors": rep["changed_by_priors"]["share_of_labelled"],
        "ignore_share": rep["pixels"]["ignore_share"],
        "mean_confidence": rep.get("mean_confidence"),
        "agreement_pseudo": agree.get("pseudo_labels"),
        "agreement_teacher": agree.get("teacher"),
    }


def pseudo_table(stats: dict[str, dict[str, Any] | None]) -> str:
    """Markdown table of :func:`pseudo_report_summary` rows keyed ``arm / dataset``."""

    def p(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines = [
        "| pseudo-labels | images | argmax changed by priors | ignore | mean confidence "
        "| pseudo-label / teacher consistent with the extra GT |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, s in stats.items():
        if s is None:
            lines.append(f"| {name} | n/a | n/a | n/a | n/a | n/a |")
            continue
        conf = "n/a" if s["mean_confidence"] is None else f"{s['mean_confidence']:.3f}"
        lines.append(
            f"| {name} | {s['images']} | {p(s['changed_by_priors'])} | {p(s['ignore_share'])} | {conf} "
            f"| {p(s['agreement_pseudo'])} / {p(s['agreement_teacher'])} |"
        )
    return "\n".join(lines)


def section_markdown(
    lines: list[str],
    *,
    results: dict[str, list[dict[str, Any]]],
    sets: Sequence[str],
    titles: dict[str, str],
    pseudo_title: str,
    stats: dict[str, dict[str, Any] | None],
    figures: Sequence[Path],
) -> str:
    """A benchmark's results section: ``lines`` (heading, settings, mIoU table, goals),
    then the pseudo-label table under ``### <pseudo_title>``, the per-class IoU table of
    every set and the note naming the preview panels."""
    lines = [*lines, f"### {pseudo_title}", "", pseudo_table(stats), ""]
    lines += per_class_sections(results, sets, titles)
    lines += previews_note(figures)
    return "\n".join(lines)
