"""Command-line interface: ``labelbridge --help`` lists the commands."""

from labelbridge.cli import taxonomy_cmds  # noqa: F401  (registers commands)
from labelbridge.cli import suggest_cmds  # noqa: F401
from labelbridge.cli.app import app, main

__all__ = ["app", "main"]
