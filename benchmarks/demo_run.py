"""The demo's table, measured: ``labelbridge demo`` run through the console script in a
fresh folder, its wall time and the table it prints written to ``results.md`` (section
``demo``) and to the README's set-up paragraph (the block between its ``demo`` markers),
so the numbers the README quotes are the script's.

Run:  python -m benchmarks.demo_run [--out DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common.paths import REPO
from benchmarks.common.results import command_line, program, run_header, write_section
from labelbridge.pipeline import ModelResult, format_table

SECTION = "demo"
README = REPO / "README.md"


def run_demo(out: Path) -> tuple[dict, float]:
    """``labelbridge demo --out OUT --json``: its JSON and wall seconds."""
    exe = shutil.which("labelbridge") or "labelbridge"
    start = time.perf_counter()
    proc = subprocess.run(
        [exe, "demo", "--out", str(out), "--json"], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"labelbridge demo failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), seconds


def table_of(data: dict) -> str:
    """The demo's table, from its JSON (the rows the pipeline wrote)."""
    rows = [ModelResult(**row) for row in data["rows"]]
    return format_table(rows, data["evaluation"])


def readme_block(table: str, seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return (
        f"On this project's 2-core CPU machine the demo took {minutes} min {rest} s and printed "
        "(mIoU %, on\nthe source val split and on `wild`, a robustness set in lighting never "
        "trained on; written by\n`python -m benchmarks.demo_run`):\n\n" + table
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=program(__file__), description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="demo folder (default: a temporary one)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "labelbridge_demo"
        data, seconds = run_demo(out)
    table = table_of(data)
    ordering = "; ".join(
        f"{k}: {'holds' if v else 'does not hold'}" for k, v in data["ordering"].items()
    )
    md = "\n".join(
        [
            "## Demo — the embedded procedural world, end to end",
            "",
            run_header(command_line(__file__, sys.argv[1:] if argv is None else argv)),
            f"- wall time: {seconds / 60:.1f} min for `labelbridge demo --json` in a new folder "
            f"(1-min load average at start: {load:.1f})",
            "",
            table,
            "",
            f"The paper's ordering (student with priors > Naive Student > teacher): {ordering}.",
        ]
    )
    print(md)
    if not args.no_write:
        write_section(SECTION, md)
        write_section(SECTION, readme_block(table, seconds), path=README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
