"""One run of a real-data benchmark (U1, U2): its start (command line, profile, shared
data check, work folder), cached results, jobs in worker processes, and its end (the
results section and the JSON beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common.paths import require_shared_data
from benchmarks.common.profiles import (
    Profile,
    parse_args,
    select_profile,
    setup_process,
    work_dir,
)
from benchmarks.common.results import command_line, program, run_header, write_section


def cached_json(path: Path, compute: Callable[[], Any]) -> Any:
    """``compute()``, stored in ``path`` and read back from there on later runs."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    value = compute()
    write_json(path, value)
    return value


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_jobs(fn: Callable[[Any], Any], items: Sequence[Any], jobs: int) -> list[Any]:
    """``fn(item)`` for every item, ``jobs`` at a time in spawned processes (``jobs == 1``
    or a single item: in this process). ``fn`` must be picklable (a module-level
    function, or a :func:`functools.partial` of one)."""
    if jobs <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(
        max_workers=min(jobs, len(items)), mp_context=mp.get_context("spawn")
    ) as pool:
        return list(pool.map(fn, items))


def load_average() -> str:
    """The 1-minute load average (the shared CPU machine is often busy)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def elapsed(start: float) -> str:
    """Wall time since ``start`` as ``12.3 min``."""
    return f"{(time.time() - start) / 60:.1f} min"


def results_targets(
    args: argparse.Namespace, profile: Profile, section: str, json_name: str
) -> tuple[str, Path]:
    """The results.md section id and the JSON path of a run: ``--section-suffix`` makes
    a variant section ``<section>-<suffix>`` and ``<json>_<suffix>.json``; the smoke
    profile writes ``<json>_smoke.json``."""
    if profile.name == "smoke":
        json_name = json_name.replace(".json", "_smoke.json")
    if args.section_suffix:
        section = f"{section}-{args.section_suffix}"
        json_name = json_name.replace(".json", f"_{args.section_suffix}.json")
    return section, args.results.parent / json_name


@dataclass
class BenchmarkRun:
    """A started run of a real-data benchmark.

    Attributes:
        bench: ``U1`` or ``U2`` (in messages and the JSON).
        script: the benchmark's ``__file__`` (its recorded command).
        args: the parsed command line.
        profile: the profile with the command line's overrides.
        work: the work folder (created).
        start: ``time.time()`` at the start.
        load_at_start: the 1-minute load average at the start.
    """

    bench: str
    script: str
    args: argparse.Namespace
    profile: Profile
    work: Path
    start: float
    load_at_start: str

    @property
    def command(self) -> str:
        return command_line(self.script)

    def say(self, message: str) -> None:
        """Print ``<bench>: <message> (<elapsed>)``."""
        print(f"{self.bench}: {message} ({elapsed(self.start)})", flush=True)

    def header(self, title: str) -> list[str]:
        """The first Markdown lines of the section: ``title`` (with the variant), the run
        header and the wall time."""
        variant = self.args.section_suffix
        return [
            f"## {title} ({self.profile.name} profile)"
            + (f", variant `{variant}`" if variant else ""),
            "",
            run_header(self.command).rstrip(),
            f"- wall time: {elapsed(self.start)} (1-min load average at start: "
            f"{self.load_at_start}; the CPU machine is shared)",
        ]

    def finish(self, section: str, json_name: str, markdown: str, **data: Any) -> int:
        """Write the results section and the JSON (``data`` between the run's settings and
        its wall time), print the section; returns the exit status 0."""
        section, json_path = results_targets(self.args, self.profile, section, json_name)
        write_section(section, markdown, path=self.args.results)
        write_json(
            json_path,
            {
                "benchmark": self.bench,
                "command": self.command,
                "profile": asdict(self.profile),
                "seeds": self.args.seeds,
                **data,
                "wall_minutes": (time.time() - self.start) / 60,
                "load_average_at_start": self.load_at_start,
            },
        )
        print(markdown)
        self.say(f"wrote {self.args.results} and {json_path}")
        return 0


def start_run(
    bench: str,
    script: str,
    description: str,
    profiles: dict[str, Profile],
    argv: Sequence[str] | None = None,
    *,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    work_name: Callable[[argparse.Namespace], str] | None = None,
) -> BenchmarkRun:
    """Parse the command line, choose the profile, set the process up, check the shared
    data (exit with a message without it) and create the work folder.

    Args:
        bench: ``U1`` or ``U2``.
        script: the benchmark's ``__file__``.
        description: the ``--help`` description.
        profiles: the benchmark's profiles.
        argv: the arguments (default: the process's).
        extra: adds the benchmark's own options.
        work_name: the work folder's name stem from the arguments (default ``bench``
            in lower case).
    """
    args = parse_args(description, argv, extra=extra, prog=program(script))
    profile = select_profile(profiles, args)
    setup_process(profile, verbose=args.verbose)
    require_shared_data()
    start = time.time()
    load_at_start = load_average()
    name = work_name(args) if work_name is not None else bench.lower()
    work = work_dir(args, name, profile)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{bench} ({profile.name}): work folder {work}", flush=True)
    return BenchmarkRun(bench, script, args, profile, work, start, load_at_start)
