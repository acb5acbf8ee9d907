"""``labelbridge init``: write a shipped example config as a starter."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import app, emit_json
from labelbridge.config.examples import example_configs, write_example


@app.command("init")
def init_cmd(
    kind: str = typer.Argument(
        None, help="Example to write (see --list), e.g. camvid_teacher or pseudo_idd_to_camvid."
    ),
    out_dir: Path = typer.Argument(Path("."), help="Folder to write <kind>.yaml into."),
    list_kinds: bool = typer.Option(False, "--list", help="List the examples and exit."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the list, or the file)."),
) -> None:
    """Write one of the example configs shipped with labelbridge into OUT_DIR, to edit and
    run (the command that runs it is printed). The examples' dataset and weight paths
    are relative to a checkout beside ../shared; point them at your copies, or set a
    root to null and export LABELBRIDGE_DATA=/path/to/datasets.

    Examples:
      labelbridge init --list
      labelbridge init camvid_teacher my_run/
    """
    examples = example_configs()
    if list_kinds or kind is None:
        if as_json:
            emit_json(
                [
                    {"kind": e.kind, "command": e.command, "summary": e.summary}
                    for e in examples.values()
                ]
            )
            return
        width = max(len(k) for k in examples)
        for e in examples.values():
            print(f"{e.kind:<{width}}  {e.command:<12}  {e.summary}")
        return
    path = write_example(kind, out_dir, overwrite=force)
    command = examples[kind].command
    if as_json:
        emit_json({"kind": kind, "path": str(path), "command": f"labelbridge {command} {path}"})
        return
    print(f"wrote {path}; edit its paths, then run: labelbridge {command} {path}")
