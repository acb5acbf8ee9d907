"""What a benchmark records: its command line, a run header (command, hardware, date,
commit) and one section of ``benchmarks/results.md``.

Each benchmark owns one section, delimited by ``<!-- section:ID -->`` and
``<!-- /section:ID -->``; re-running a benchmark replaces only its own section.

Usage::

    from benchmarks.common.results import command_line, run_header, write_section
    write_section("p3-eval", run_header(command_line(__file__)) + table)
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common.paths import BENCHMARKS, REPO

RESULTS_FILE = BENCHMARKS / "results.md"
_NEW_FILE = "# Benchmark results\n\nWritten by the scripts in `benchmarks/` (one section each); never edited by hand.\n"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("-dirty" if dirty else "")


def hardware() -> str:
    """One line: CPU model, cores, torch version and the GPU name if CUDA is available."""
    parts = [f"CPU {_cpu_model()}", f"{os.cpu_count()} cores"]
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
        if torch.cuda.is_available():
            parts.append(f"GPU {torch.cuda.get_device_name(0)}")
        else:
            parts.append("no GPU")
    except ImportError:
        parts.append("torch not installed")
    return ", ".join(parts)


def program(script: str | Path) -> str:
    """How the benchmark ``script`` (its ``__file__``) is run from the repository root:
    ``python -m benchmarks.NAME`` (its ``--help`` usage line)."""
    return f"python -m benchmarks.{Path(script).stem}"


def command_line(script: str | Path, args: Sequence[str] | None = None) -> str:
    """The command line of a run of the benchmark ``script``: :func:`program` and
    ``args`` (default: this process's arguments), shell-quoted."""
    argv = sys.argv[1:] if args is None else list(args)
    return " ".join([program(script), *map(shlex.quote, argv)])


def run_header(command: str) -> str:
    """Markdown lines naming the command, hardware, UTC date and git commit of a run."""
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"- command: `{command}`\n"
        f"- hardware: {hardware()}\n"
        f"- date: {date}\n"
        f"- commit: `{_git_commit()}`\n"
    )


def write_section(section_id: str, markdown: str, *, path: Path = RESULTS_FILE) -> Path:
    """Create or replace the section ``section_id`` of ``results.md`` with ``markdown``.

    Args:
        section_id: short id (letters, digits, ``-``, ``_``, ``.``), e.g. ``"p3-eval"``.
        markdown: the section's body (it should start with its own heading).
        path: the results file (default ``benchmarks/results.md``).

    Returns:
        The written file.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", section_id):
        raise ValueError(f"section id {section_id!r} may hold only letters, digits, '-', '_', '.'")
    start, end = f"<!-- section:{section_id} -->", f"<!-- /section:{section_id} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.S)
    with open(
        Path(tempfile.gettempdir()) / "labelbridge-results.lock", "w"
    ) as lock:  # benchmarks may finish together
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = path.read_text() if path.is_file() else _NEW_FILE
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text, count=1)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n")
        tmp.replace(path)
    return path
