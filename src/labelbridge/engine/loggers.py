"""The Lightning loggers and extra callbacks of a training stage, built from the config
(``trainer.loggers``, ``trainer.callbacks``; see :class:`~labelbridge.config.run.LoggerConfig`
and :class:`~labelbridge.config.run.CallbackConfig`).

Every logger writes under the stage folder unless its options say otherwise:
``<stage>/logs/tensorboard``, ``<stage>/logs/csv`` (``csv_1``, ... after a resume, next to
the earlier file), ``<stage>/logs/wandb`` and ``<stage>/logs/mlflow.db`` (MLflow's local SQLite store).
A W&B or MLflow run is named after the stage folder (``teacher/train``, ...).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger

from labelbridge.config.run import CallbackConfig, LoggerConfig
from labelbridge.errors import ConfigError

#: Sub-folder of a stage folder that holds its logs.
LOGS = "logs"

#: MLflow's local store in a stage's logs folder (SQLite).
MLFLOW_DB = "mlflow.db"

#: Logger name -> (module, class, pip package) of the loggers that need an extra install.
_OPTIONAL = {
    "wandb": ("wandb", "WandbLogger", "wandb"),
    "mlflow": ("mlflow", "MLFlowLogger", "mlflow-skinny sqlalchemy alembic"),
}


def fresh_version(folder: Path, stem: str) -> str:
    """``stem``, or ``stem_1``, ``stem_2``, ... whichever does not exist yet (a resumed
    stage writes its CSV log next to the earlier one instead of replacing it)."""
    name, n = stem, 0
    while (folder / name).exists():
        n += 1
        name = f"{stem}_{n}"
    return name


def _run_name(stage_dir: Path) -> str:
    return f"{stage_dir.parent.name}/{stage_dir.name}"


def _defaults(name: str, stage_dir: Path) -> dict[str, Any]:
    logs = stage_dir / LOGS
    if name == "tensorboard":
        return {
            "save_dir": stage_dir,
            "name": LOGS,
            "version": "tensorboard",
            "default_hp_metric": False,
        }
    if name == "csv":
        return {"save_dir": stage_dir, "name": LOGS, "version": fresh_version(logs, "csv")}
    logs.mkdir(parents=True, exist_ok=True)
    if name == "wandb":
        (logs / "wandb").mkdir(parents=True, exist_ok=True)
        return {"save_dir": str(logs / "wandb"), "name": _run_name(stage_dir)}
    return {  # mlflow
        # MLflow 3 refuses its file store by default; a SQLite file is its local store
        "tracking_uri": f"sqlite:///{(logs / MLFLOW_DB).resolve()}",
        "experiment_name": "labelbridge",
        "run_name": _run_name(stage_dir),
    }


def _logger_class(name: str) -> type[Logger]:
    if name == "tensorboard":
        return TensorBoardLogger
    if name == "csv":
        return CSVLogger
    module, cls, package = _OPTIONAL[name]
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"trainer.loggers: {name!r} needs the {package} package: pip install {package} "
            "(or pip install 'labelbridge[loggers]')"
        ) from None
    return getattr(importlib.import_module("lightning.pytorch.loggers"), cls)


def build_loggers(specs: list[LoggerConfig], stage_dir: Path) -> list[Logger]:
    """The stage's loggers, in config order (options override the defaults above).

    Raises:
        ConfigError: a logger whose package is not installed, or options its class does
            not take (the message names the logger and the error).
    """
    out = []
    for spec in specs:
        cls = _logger_class(spec.name)
        kwargs = {**_defaults(spec.name, stage_dir), **spec.options}
        try:
            out.append(cls(**kwargs))
        except TypeError as exc:
            raise ConfigError(
                f"trainer.loggers: {spec.name} with options {spec.options}: {exc}"
            ) from None
    return out


def finish_loggers(loggers: list[Logger]) -> None:
    """End the runs of loggers that keep one open past ``fit`` (W&B: its run would
    otherwise take the next stage's metrics too, and its summary is written only now)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


def build_callbacks(specs: list[CallbackConfig]) -> list[L.Callback]:
    """Instances of the configured callback classes.

    Raises:
        ConfigError: a class that cannot be imported, is not a ``lightning.Callback``, or
            does not take its ``init_args``.
    """
    out = []
    for spec in specs:
        module_name, _, cls_name = spec.class_path.rpartition(".")
        where = f"trainer.callbacks: {spec.class_path}"
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{where}: cannot import it ({exc})") from None
        if not (isinstance(cls, type) and issubclass(cls, L.Callback)):
            raise ConfigError(f"{where}: not a lightning.Callback subclass")
        try:
            out.append(cls(**spec.init_args))
        except TypeError as exc:
            raise ConfigError(f"{where} with init_args {spec.init_args}: {exc}") from None
    return out
