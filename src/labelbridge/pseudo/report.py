"""Per-dataset report of a pseudo-labelling run (``report.json`` + ``report.md``).

Built from the manifest records alone, so it is complete after a resume and after
sharded runs: pixels per source class, the share of pixels whose argmax the priors
changed, mean confidence per class, skipped inputs and out-of-memory fallbacks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labelbridge.data.pseudo_folder import REPORT_FILE
from labelbridge.files import write_bytes_atomic
from labelbridge.pseudo.manifest import is_finished
from labelbridge.taxonomy import Taxonomy

IGNORE_NAME = "ignore"


def build_report(
    records: Iterable[dict[str, Any]],
    *,
    dataset: str,
    taxonomy: Taxonomy,
    total_images: int,
    extra_skipped: list[dict[str, str]] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Aggregate manifest records into a report.

    Args:
        records: manifest records (finished images and skipped files).
        dataset: the dataset entry's name.
        taxonomy: source taxonomy (class order of the table).
        total_images: images the run covers (after ``limit``).
        extra_skipped: files the reader dropped while listing (``on_error: skip``), as
            ``{"key", "input", "error"}``; listed and counted like skipped files.
        settings: recorded as is (teacher, TTA, priors).

    Returns:
        a JSON-serialisable dict; ``classes`` lists every source class in train-id order
        plus ``ignore``, each with ``pixels``, ``share``, ``changed_by_priors``,
        ``changed_share`` and ``mean_confidence`` (``None`` with no pixels).
    """
    pixels: Counter[str] = Counter()
    changed: Counter[str] = Counter()
    conf: Counter[str] = Counter()
    skipped: list[dict[str, str]] = []
    fallbacks: Counter[tuple[float, str]] = Counter()
    agreement: Counter[str] = Counter()
    finished = 0
    for rec in records:
        if not is_finished(rec):
            if "error" in rec:
                skipped.append(
                    {"key": rec["key"], "input": rec.get("input", ""), "error": rec["error"]}
                )
            continue
        finished += 1
        pixels.update(rec.get("pixels", {}))
        changed.update(rec.get("changed", {}))
        conf.update(rec.get("confidence_sum", {}))
        agreement.update(rec.get("agreement", {}))
        for ev in rec.get("fallbacks", []):
            fallbacks[(float(ev["scale"]), str(ev["level"]))] += 1
    load_skips = len(skipped)
    skipped.extend(extra_skipped or [])
    total_pixels = sum(pixels.values())
    labelled = total_pixels - pixels.get(IGNORE_NAME, 0)
    rows = []
    for name in [*taxonomy.train_names, IGNORE_NAME]:
        n = int(pixels.get(name, 0))
        c = int(changed.get(name, 0))
        rows.append(
            {
                "name": name,
                "pixels": n,
                "share": n / total_pixels if total_pixels else 0.0,
                "changed_by_priors": c,
                "changed_share": c / n if n else 0.0,
                "mean_confidence": (float(conf.get(name, 0.0)) / n)
                if n and name != IGNORE_NAME
                else None,
            }
        )
    total_changed = sum(changed.values())
    return {
        "dataset": dataset,
        "taxonomy": taxonomy.name,
        "images": {
            "total": total_images,
            "finished": finished,
            "remaining": max(0, total_images - finished - load_skips),
            "skipped_bad_files": len(skipped),
        },
        "complete": finished == total_images and not skipped,
        "pixels": {
            "total": total_pixels,
            "labelled": labelled,
            "ignore": total_pixels - labelled,
            "ignore_share": (total_pixels - labelled) / total_pixels if total_pixels else 0.0,
        },
        "changed_by_priors": {
            "pixels": total_changed,
            "share_of_labelled": total_changed / labelled if labelled else 0.0,
        },
        "mean_confidence": (
            sum(v for k, v in conf.items() if k != IGNORE_NAME) / labelled if labelled else None
        ),
        "agreement_with_extra_gt": {
            "labelled_pixels": int(agreement["labelled"]),
            "pseudo_labels": agreement["pseudo"] / agreement["labelled"]
            if agreement["labelled"]
            else None,
            "teacher": agreement["teacher"] / agreement["labelled"]
            if agreement["labelled"]
            else None,
        },
        "classes": rows,
        "skipped": skipped,
        "fallbacks": [
            {"scale": s, "level": lvl, "images": n} for (s, lvl), n in sorted(fallbacks.items())
        ],
        "settings": settings or {},
    }


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f}%"


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page (summary, class table, skipped files, fallbacks)."""
    im, px, ch = report["images"], report["pixels"], report["changed_by_priors"]
    mc = report["mean_confidence"]
    lines = [
        f"# Pseudo-labels: {report['dataset']}",
        "",
        f"- taxonomy: `{report['taxonomy']}`",
        f"- images: {im['finished']} of {im['total']} finished"
        + (f", {im['skipped_bad_files']} bad files skipped" if im["skipped_bad_files"] else "")
        + (f", {im['remaining']} remaining" if im["remaining"] else ""),
        f"- pixels: {px['total']:,} ({_pct(px['ignore_share'])} ignore)",
        f"- changed by priors: {ch['pixels']:,} pixels ({_pct(ch['share_of_labelled'])} of labelled)",
        f"- mean confidence: {mc:.3f}" if mc is not None else "- mean confidence: n/a",
    ]
    ag = report.get("agreement_with_extra_gt") or {}
    if ag.get("labelled_pixels"):
        lines.append(
            f"- agreement with the extra ground truth (projected to the extra taxonomy, "
            f"{ag['labelled_pixels']:,} labelled pixels): pseudo-labels {_pct(ag['pseudo_labels'])}, "
            f"teacher alone {_pct(ag['teacher'])}"
        )
    settings = report.get("settings") or {}
    if settings:
        tta = settings.get("tta", {})
        lines.append(
            f"- priors: {settings.get('priors')}; TTA scales {tta.get('scales')}, flip {tta.get('flip')}"
        )
    lines += [
        "",
        "| class | pixels | share | changed by priors | mean confidence |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["classes"]:
        conf = "" if row["mean_confidence"] is None else f"{row['mean_confidence']:.3f}"
        lines.append(
            f"| {row['name']} | {row['pixels']:,} | {_pct(row['share'])} | "
            f"{_pct(row['changed_share'])} | {conf} |"
        )
    if report["fallbacks"]:
        lines += [
            "",
            "## Out-of-memory fallbacks",
            "",
            "| scale | switched to | images |",
            "|---:|---|---:|",
        ]
        lines += [f"| {f['scale']} | {f['level']} | {f['images']} |" for f in report["fallbacks"]]
    if report["skipped"]:
        lines += ["", "## Skipped input files", ""]
        lines += [f"- `{s['input'] or s['key']}`: {s['error']}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def write_report(folder: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` atomically into ``folder``."""
    folder = Path(folder)
    js, md = folder / REPORT_FILE, folder / "report.md"
    write_bytes_atomic(js, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    write_bytes_atomic(md, report_markdown(report).encode("utf-8"))
    return js, md
