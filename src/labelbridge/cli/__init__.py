"""Command-line interface: ``labelbridge --help`` lists the commands."""

from labelbridge.cli import taxonomy_cmds  # noqa: F401  (registers commands)
from labelbridge.cli import eval_cmds  # noqa: F401  (registers commands)
from labelbridge.cli import suggest_cmds  # noqa: F401
from labelbridge.cli import data_cmds  # noqa: F401
from labelbridge.cli import pseudo_cmds  # noqa: F401
from labelbridge.cli import ontology_tools_cmds  # noqa: F401
from labelbridge.cli import distill_cmds  # noqa: F401
from labelbridge.cli import train_cmds  # noqa: F401
from labelbridge.cli import pipeline_cmds  # noqa: F401
from labelbridge.cli import model_cmds  # noqa: F401  (registers commands)
from labelbridge.cli.app import app, main

__all__ = ["app", "main"]
