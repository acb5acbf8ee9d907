"""Issue 9 acceptance: count how labelbridge handles bad input, bad configuration,
resource faults and SIGKILL-and-resume, and write the table to ``benchmarks/results.md``
(section ``reliability``).

The cases are the ones the tests run (:mod:`benchmarks.common.reliability`):

* every corruption of one sample (truncated image, truncated label, label id or colour
  outside the taxonomy, size mismatch, missing label, unreadable label, empty split) in
  every published reader layout, under ``on_error: raise`` and ``skip``, then the same
  through the pseudo-labeller;
* out of memory at a TTA scale (with and without a fallback left) and a full disk;
* bad mappings, stage configs and checkpoints through the real ``labelbridge`` console
  script;
* SIGKILL of ``pseudo-label``, ``train`` and ``pipeline`` at random moments, resumed and
  compared with an uninterrupted run.

Usage::

    python -m benchmarks.reliability [--trials 5] [--no-kill] [--work DIR]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.common.layouts import LAYOUTS
from benchmarks.common.reliability import (
    CLEAR_ERROR,
    CLI_CASES,
    CORRUPTIONS,
    RECORDED_FALLBACK,
    RECORDED_SKIP,
    RESOURCE_CASES,
    SETUPS,
    CaseResult,
    TrialResult,
    expected_outcome,
    kill_resume_trials,
    pseudo_case,
    reader_case,
    run_cli_case,
)
from benchmarks.common.results import command_line, program, run_header, write_section

SECTION = "reliability"
log = logging.getLogger("reliability")


def bad_input_cases(work: Path) -> list[tuple[CaseResult, str]]:
    """Every reader, pseudo-label, resource and CLI case with the outcome it must give."""
    cache = work / "pristine"
    out: list[tuple[CaseResult, str]] = []
    for layout in sorted(LAYOUTS):
        for corruption in CORRUPTIONS:
            for mode in ("raise", "skip"):
                case = reader_case(
                    layout,
                    corruption,
                    mode,
                    work / "readers" / f"{layout}-{corruption}-{mode}",
                    cache=cache,
                )
                out.append((case, expected_outcome(corruption, mode)))
    log.info("reader cases done")
    for corruption in CORRUPTIONS:
        for mode in ("raise", "skip"):
            case = pseudo_case(
                corruption, mode, work / "pseudo" / f"{corruption}-{mode}", cache=cache
            )
            out.append((case, expected_outcome(corruption, mode)))
    log.info("pseudo-label cases done")
    expected = {
        "oom_fallback": RECORDED_FALLBACK,
        "oom_no_fallback": CLEAR_ERROR,
        "disk_full": CLEAR_ERROR,
    }
    for name, fn in RESOURCE_CASES.items():
        out.append((fn(work / "resource" / name), expected[name]))
    for i, cli_case in enumerate(CLI_CASES):
        out.append((run_cli_case(cli_case, work / "cli" / f"{i:02d}"), CLEAR_ERROR))
        log.info("cli case %r done", cli_case.name)
    return out


def outcome_table(cases: list[tuple[CaseResult, str]]) -> str:
    groups = {
        "reader": f"dataset readers ({len(LAYOUTS)} layouts x {len(CORRUPTIONS)} corruptions x raise/skip)",
        "pseudo-label": f"pseudo-labeller ({len(CORRUPTIONS)} corruptions x raise/skip)",
        "resource": "resource faults (TTA out of memory, disk full)",
        "cli": "configuration and checkpoints through the `labelbridge` CLI",
    }
    lines = [
        "| inputs | cases tried | clear error | recorded skip / fallback | as expected | failed |",
        "|---|---|---|---|---|---|",
    ]
    totals: Counter[str] = Counter()
    for group, title in groups.items():
        rows = [(c, e) for c, e in cases if c.group == group]
        counts = Counter(c.outcome for c, _ in rows)
        good = sum(c.outcome == e for c, e in rows)
        recorded = counts[RECORDED_SKIP] + counts[RECORDED_FALLBACK]
        failed = len(rows) - counts[CLEAR_ERROR] - recorded
        lines.append(
            f"| {title} | {len(rows)} | {counts[CLEAR_ERROR]} | {recorded} | {good} | {failed} |"
        )
        totals.update(
            tried=len(rows), clear=counts[CLEAR_ERROR], recorded=recorded, good=good, failed=failed
        )
    lines.append(
        f"| **all** | **{totals['tried']}** | **{totals['clear']}** | **{totals['recorded']}** | "
        f"**{totals['good']}** | **{totals['failed']}** |"
    )
    return "\n".join(lines)


def unexpected(cases: list[tuple[CaseResult, str]]) -> str:
    rows = [(c, e) for c, e in cases if c.outcome != e]
    if not rows:
        return "Every case gave the outcome it must give."
    lines = ["Cases that did not give the outcome they must give:", ""]
    for c, e in rows:
        detail = " ".join(c.detail.split())[:300].replace("|", "\\|")
        lines.append(
            f"- {c.group} `{c.name}` (on_error {c.mode}): expected {e}, got **{c.outcome}**: {detail}"
        )
    return "\n".join(lines)


def kill_table(trials: dict[str, tuple[list[TrialResult], float]]) -> str:
    lines = [
        "| stage | uninterrupted run, s | kills | kill moments, s | progress at the kills | bad files right after a kill | "
        "training that did not continue from its checkpoint | files lost or corrupted after resume | "
        "resumed = uninterrupted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stage, (results, total) in trials.items():
        if not results:
            lines.append(f"| {stage} | {total:.1f} | 0 | - | - | - | - | - | - |")
            continue
        moments = ", ".join(f"{r.delay:.1f}" for r in results)
        progress = "; ".join(r.progress for r in results)
        after_kill = sum(len(r.after_kill) for r in results)
        back = sum(len(r.steps_back) for r in results)
        last = results[-1]
        lost = len(last.after_resume) + last.differing
        same = "yes" if last.identical else f"no ({last.detail[:120]})"
        lines.append(
            f"| {stage} | {total:.1f} | {len(results)} | {moments} | {progress} | {after_kill} | {back} | {lost} | {same} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trials", type=int, default=5, help="SIGKILL trials per stage (default 5)."
    )
    parser.add_argument("--no-kill", action="store_true", help="Skip the kill-and-resume trials.")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="Scratch folder (default: a temporary one, removed).",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("labelbridge", "lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import torch

    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="lb-reliability-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        cases = bad_input_cases(work)
        trials: dict[str, tuple[list[TrialResult], float]] = {}
        if not args.no_kill:
            for i, stage in enumerate(sorted(SETUPS)):
                log.info("kill-and-resume trials: %s", stage)
                trials[stage] = kill_resume_trials(
                    stage, work / "kill" / stage, trials=args.trials, seed=i
                )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - start
    command = command_line(
        __file__,
        [
            *(["--trials", str(args.trials)] if args.trials != 5 else []),
            *(["--no-kill"] if args.no_kill else []),
        ],
    )
    parts = [
        "## Reliability — bad input, interruptions and resumption (issue 9)",
        "",
        run_header(command).rstrip(),
        f"- wall time: {elapsed:.0f} s",
        "",
        "Outcomes: a **clear error** is a `UserError` naming the file and the problem (through the CLI: exit status 2, "
        "one `error:` paragraph, no traceback); a **recorded skip** drops exactly the damaged sample and lists it "
        "(reader: `skipped`; pseudo-labeller: `report.json`), every other label byte-exact; a **recorded fallback** "
        "keeps the TTA scale and lists the fallback in the report. *As expected* counts cases that gave the outcome "
        "they must give (`on_error: raise` and empty splits: clear error; `on_error: skip`: recorded skip).",
        "",
        outcome_table(cases),
        "",
        unexpected(cases),
        "",
    ]
    if trials:
        parts += [
            "### SIGKILL and resume (real CLI, tiny generated data)",
            "",
            "Kills are chained in one run folder (each interrupts the re-run after the previous kill); each comes a "
            "random 0-0.3 s after a random change of the running command's output folder (drawn from the number of "
            "changes the uninterrupted run made), so the moments follow the work; then the command is run once more "
            "to the end. *Bad files right after a kill*: visible files that are empty or do not parse "
            "(temporary files and a torn manifest tail, which the next run removes, are not counted). *Files lost or "
            "corrupted after resume*: leftover temporary, empty or unparsable files plus outputs that differ from the "
            "uninterrupted run (pseudo-label PNG/NPZ bytes; each training stage's global step, epoch, validation "
            "history and weights, every tensor bit for bit; the pipeline's finished stages and their weights). "
            "A trial that resumes training with other weights than the uninterrupted run's counts as lost.",
            "",
            kill_table(trials),
        ]
    write_section(SECTION, "\n".join(parts))
    print("\n".join(parts))


if __name__ == "__main__":
    main()
