"""Command-line interface: ``labelbridge --help`` lists the commands.

Importing the ``*_cmds`` modules registers their commands on the Typer app.
"""

from labelbridge.cli import (  # noqa: F401
    data_cmds,
    distill_cmds,
    eval_cmds,
    export_cmds,
    init_cmds,
    model_cmds,
    ontology_tools_cmds,
    pipeline_cmds,
    pseudo_cmds,
    suggest_cmds,
    taxonomy_cmds,
    train_cmds,
)
from labelbridge.cli.app import app, main

__all__ = ["app", "main"]
