"""Exception types. A :class:`UserError` is a problem with the user's input (a file, a
config, a dataset) and is shown by the CLI as one paragraph without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a file, a config value, a dataset. The message names the
    file (and line, where known) and the problem."""


class TaxonomyError(UserError):
    """A taxonomy file is invalid or a name is unknown."""


class OntologyError(UserError):
    """An ontology mapping file is invalid."""


class DatasetError(UserError):
    """A dataset file is missing, unreadable, or holds values outside its taxonomy."""


class SplitAbsent(DatasetError):
    """The files that make up a split (its image folder or list file) are not under the
    root: a partial download, not a broken one. ``datasets check`` without ``--split``
    notes such a split and checks the others."""


class ConfigError(UserError):
    """A configuration file has unknown keys or wrong types."""


class CheckpointError(UserError):
    """A checkpoint cannot be loaded or does not match what it is used with."""


class ResourceError(UserError):
    """The machine cannot do what was asked (out of memory with every fallback tried,
    disk full); the message says what was tried."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (raised by the CLI's signal handlers; a
    :class:`BaseException`, so no ``except Exception`` swallows it). Finished work is kept;
    running the same command again resumes.

    Attributes:
        signum: the signal number.
    """

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
