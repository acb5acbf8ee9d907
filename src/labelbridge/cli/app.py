"""The Typer application and its error handling.

Commands live in small modules next to this one (``*_cmds.py``); each only parses its
arguments, builds objects from configs, and calls the library. A
:class:`~labelbridge.errors.UserError` is shown as one paragraph and exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import errno
import json
import logging
import signal
import sys
from typing import Any

import typer

from labelbridge.errors import Interrupted, UserError

app = typer.Typer(
    name="labelbridge",
    help=(
        "Unify semantic-segmentation datasets with conflicting taxonomies: check ontology "
        "mappings, pseudo-label extra datasets with a teacher and the mappings' priors, "
        "train teachers and students, evaluate."
    ),
    no_args_is_help=True,
    add_completion=False,
    # help texts are plain text: '[priors]' in an example must not be read as Rich markup
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
ontology_app = typer.Typer(
    help="Check, show, suggest, compare and convert ontology mappings.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
datasets_app = typer.Typer(
    help="List, check and prepare datasets.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(ontology_app, name="ontology")
app.add_typer(datasets_app, name="datasets")

_STATE: dict[str, Any] = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        import torch

        from labelbridge import __version__

        print(
            f"labelbridge {__version__} (torch {torch.__version__}, python {sys.version.split()[0]})"
        )
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print labelbridge's version (and torch's, python's) and exit.",
    ),
) -> None:
    _STATE["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:
        # Lightning logs device and tip lines at INFO through its own handler and ours;
        # keep its warnings, drop the chatter (``--verbose`` shows everything)
        # (Lightning resets its package loggers' levels on import, so the levels are set on
        # the modules that emit those lines)
        for name in (
            "lightning.pytorch.utilities.rank_zero",
            "lightning.fabric.utilities.rank_zero",
            "lightning.fabric.utilities.seed",
            "lightning.pytorch.accelerators.cuda",
        ):
            logging.getLogger(name).setLevel(logging.WARNING)
        # the ONNX exporter's graph passes log every step at INFO (hundreds of lines)
        for name in ("onnx_ir", "onnxscript"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # torch's ONNX registry warns once per torchvision operator it cannot register
        # (torchvision is not a dependency; no model here uses those operators)
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


#: What a ``--checkpoint`` may be (``labelbridge.models.load_checkpoint`` reads them all).
CHECKPOINT_HELP: str = (
    "labelbridge or Lightning checkpoint, Hub model folder (export --format hub), or a "
    "published ESPNetv2/DiCENet file"
)


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (for ``--json`` flags)."""
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def parse_size(text: str | None, *, option: str = "--input-size") -> tuple[int, int] | None:
    """``"960x704"`` -> ``(960, 704)`` (width, height); ``None`` or ``""`` -> ``None``.
    The one parser of ``WxH`` options.

    Raises:
        UserError: not two positive integers joined by ``x``; the message names ``option``.
    """
    if not text:
        return None
    w, sep, h = text.strip().lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 1:
        raise UserError(
            f"{option} must be WIDTHxHEIGHT with positive integers, e.g. 960x704, got {text!r}"
        )
    return size


#: Help of the ``--tta`` / ``--tta-scales`` / ``--device`` options of evaluate and predict.
TTA_HELP = (
    "Test-time augmentation as the pseudo-labeller does it: probabilities averaged over "
    "scales 0.5-2 and a horizontal flip (slower: 14 passes per image)."
)
TTA_SCALES_HELP = "Comma-separated TTA scales, e.g. 0.75,1,1.25 (implies --tta)."
DEVICE_HELP = (
    "Torch device: auto (this process's GPU if there is one, else cpu), cpu, cuda, cuda:1."
)


def tta_predictor(model: Any, num_classes: int, *, tta: bool, scales: str | None) -> Any:
    """The :class:`~labelbridge.models.tta.TTAPredictor` that ``--tta`` / ``--tta-scales``
    ask for (scales from the text, else the default ones; with flip), or ``None``.

    Raises:
        UserError: scales that are not positive numbers.
    """
    from labelbridge.constants import DEFAULT_TTA_SCALES
    from labelbridge.models.tta import TTAPredictor

    if not tta and scales is None:
        return None
    values = list(DEFAULT_TTA_SCALES)
    if scales is not None:
        try:
            values = [float(v) for v in scales.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or min(values) <= 0:
            raise UserError(f"--tta-scales must be positive numbers joined by ',', got {scales!r}")
    return TTAPredictor(model, num_classes=num_classes, scales=values, flip=True)


def fail(message: str, code: int = 2) -> None:
    """Print a user-facing error paragraph and exit."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def _raise_on_signals() -> dict[int, object]:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread, so every command
    stops through the same path: non-zero exit (130 / 143, as a shell reports a killed
    job) and one line on stderr, never exit 0. (Lightning catches KeyboardInterrupt and
    exits 1; its own SIGTERM handler only notes the signal and calls ours.)"""
    import threading

    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _raise_interrupted)
    return previous


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app; user errors become one paragraph, exit 2."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    previous = _raise_on_signals()
    try:
        _run(argv, debug)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _run(argv: list[str] | None, debug: bool) -> None:
    try:
        result = app(args=argv, standalone_mode=False)
        if isinstance(result, int) and not isinstance(result, bool) and result != 0:
            sys.exit(result)  # click returns (not raises) typer.Exit codes here
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        print(
            f"error: interrupted by {signal.Signals(signum).name}; finished work is kept: run "
            "the same command again to resume",
            file=sys.stderr,
        )
        sys.exit(128 + int(signum))  # 130 for SIGINT, 143 for SIGTERM
    except OSError as exc:
        message = _os_error_message(exc)
        if debug or message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2 if exc.errno in _USER_FIXABLE_ERRNOS else 1)
    except Exception as exc:  # click usage errors and friends
        usage_errors, aborts = _click_exception_types()
        if isinstance(exc, usage_errors):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if isinstance(exc, aborts):
            sys.exit(1)
        raise


# a path the user gave or must fix: exit 2 (input error); other OS errors exit 1
_USER_FIXABLE_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
    }
)
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _os_error_message(exc: OSError) -> str | None:
    """One line for an OS error that escaped a command: the file and the system's reason
    (``<file>: Permission denied``), or what a full disk means for the run; ``None`` for
    an error that names no file (shown with its traceback: it is a bug, not input)."""
    reason = exc.strerror or str(exc)
    if exc.errno in _DISK_FULL_ERRNOS:
        where = f" writing {exc.filename}" if exc.filename else ""
        return (
            f"{reason}{where}; finished work is kept: free space and run the same command "
            "again to resume"
        )
    if exc.filename is None:
        return None
    target = f" -> {exc.filename2}" if exc.filename2 is not None else ""
    return f"{exc.filename}{target}: {reason}"


_ExceptionTypes = tuple[type[BaseException], ...]


def _click_exception_types() -> tuple[_ExceptionTypes, _ExceptionTypes]:
    """``(ClickException types, Abort types)`` of click and of the copy of click that
    newer typer releases vendor as ``typer._click`` (its exceptions are other classes)."""
    import importlib

    usage: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [typer.Abort]
    for name in ("click.exceptions", "typer._click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for found, attr in ((usage, "ClickException"), (aborts, "Abort")):
            kind = getattr(module, attr, None)
            if isinstance(kind, type):
                found.append(kind)
    return tuple(usage), tuple(aborts)
