"""Issue 8 acceptance: how close does `labelbridge ontology suggest` come to the
hand-written mappings?

With the published ESPNetv2 s=2.0 Cityscapes teacher, suggest a CamVid-11 -> Cityscapes
mapping from a sample of CamVid train and an IDD level-1 -> Cityscapes mapping from a
sample of IDD-Lite train, at the default thresholds, and count for how many extra labels
the suggestion contains the *main* class (first listed) of the shipped mapping, and how
many classes each label gets. Writes the section ``ontology-suggest`` of results.md.

    python -m benchmarks.ontology_suggest [--sample 40] [--scale 2.0]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from benchmarks.common.paths import BENCHMARKS, SHARED, TEACHER_S2, require_shared_data
from benchmarks.common.results import command_line, program, run_header, write_section
from labelbridge.data import create_dataset
from labelbridge.models.checkpoint import load_checkpoint
from labelbridge.suggest import (
    SuggestThresholds,
    build_contingency,
    main_class_agreement,
    propose_mapping,
)
from labelbridge.taxonomy import load_ontology

CASES = (
    ("camvid", "camvid", "train", "camvid11_to_cityscapes"),
    ("idd_lite", "idd_lite", "train", "idd_level1_to_cityscapes"),
)


def main() -> None:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--sample", type=int, default=40, help="images sampled per dataset")
    parser.add_argument(
        "--scale",
        type=float,
        default=2.0,
        help="the teacher sees each dataset's images resized by this factor (sides rounded to "
        "multiples of 32): the Cityscapes teacher was trained on 1024x512 street views, and "
        "CamVid (480x360) and IDD-Lite (320x227) are low-resolution",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--results", type=Path, default=None, help="results file (default benchmarks/results.md)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    teacher_file = args.shared / "weights" / TEACHER_S2.name
    require_shared_data(teacher_file, *(args.shared / "data" / label for label, *_ in CASES))
    teacher = load_checkpoint(teacher_file)
    th = SuggestThresholds()
    rows, details, out = [], [], {}
    sizes_seen: dict[str, str] = {}
    t0 = time.perf_counter()
    for label, reader, split, mapping in CASES:
        ds = create_dataset(reader, args.shared / "data" / label, split)
        h0, w0 = ds[0].image.shape[:2]
        w, h = (max(32, round(v * args.scale / 32) * 32) for v in (w0, h0))
        sizes_seen[label] = f"{w}x{h}"
        table = build_contingency(
            teacher.model,
            ds,
            source=teacher.taxonomy,
            sample=args.sample,
            input_size=(w, h),
            progress=True,
        )
        proposal = propose_mapping(table, th)
        proposal.to_ontology(teacher.taxonomy, ds.taxonomy)  # must be a valid mapping
        reference = load_ontology(mapping)
        agree = main_class_agreement(proposal, reference)
        sizes = {k: len(v) for k, v in proposal.rows.items() if not ds.taxonomy.get(k).ignore}
        n_ok, n_all = sum(agree.values()), len(agree)
        rows.append(
            f"| {label} {split} ({table.images} images) | `{mapping}` | {n_ok} / {n_all} | "
            f"{max(sizes.values())} | {', '.join(proposal.unseen) or '-'} | "
            f"{', '.join(f'{k}: {sorted(v)}' for k, v in proposal.gaps.items()) or '-'} |"
        )
        details.append(
            f"\n**{label}** (suggested row; main class of `{mapping}` in bold when contained):\n"
        )
        details.append(
            "| extra label | suggested source classes (share of the label's pixels) | main class of the shipped mapping |"
        )
        details.append("|---|---|---|")
        for name, ok in agree.items():
            shares = proposal.shares.get(name, {})
            sug = ", ".join(f"{c} ({shares.get(c, 0):.0%})" for c in proposal.rows.get(name, []))
            main_cls = reference.rows[name][0]
            details.append(
                f"| {name} | {sug or '(none)'} | {'**' + main_cls + '**' if ok else main_cls + ' (missing)'} |"
            )
        out[label] = {
            "images": table.images,
            "main_class_contained": n_ok,
            "labels": n_all,
            "max_classes_per_label": max(sizes.values()),
            "rows": proposal.rows,
            "gaps": proposal.gaps,
            "unseen": proposal.unseen,
        }
        print(
            f"{label}: main class contained for {n_ok}/{n_all} labels; at most {max(sizes.values())} classes per label"
        )
    elapsed = time.perf_counter() - t0
    command = command_line(__file__)
    md = "\n".join(
        [
            "## Ontology suggestion vs. the hand-written mappings (issue 8)",
            "",
            run_header(command).rstrip(),
            f"- teacher: published ESPNetv2 s=2.0 Cityscapes, input {sizes_seen} (x{args.scale}), no flip; default thresholds "
            f"(min share {th.min_share:.0%}, at most {th.max_classes} classes, gap share {th.gap_share:.0%} at "
            f"confidence >= {th.gap_confidence:.0%}); {args.sample} random images per dataset (seed 0); {elapsed:.0f} s",
            "",
            "| dataset | shipped mapping | labels whose suggestion holds the main class | max classes per label | source classes never predicted | possible labelling gaps |",
            "|---|---|---:|---:|---|---|",
            *rows,
            *details,
        ]
    )
    if args.results is not None:
        write_section("ontology-suggest", md, path=args.results)
    else:
        write_section("ontology-suggest", md)
    (BENCHMARKS / "results_ontology_suggest.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
