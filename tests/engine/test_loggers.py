"""Loggers and callbacks from the config (``trainer.loggers``, ``trainer.callbacks``): W&B in
offline mode and MLflow's local (SQLite) store receive the stage's metrics with no network; a
configured callback runs; bad entries are refused naming the entry."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.loggers import WandbLogger

from benchmarks.common.layouts.toydata import make_toy_dataset, toy_config
from labelbridge.config.run import TrainerConfig
from labelbridge.engine.loggers import build_callbacks, build_loggers
from labelbridge.engine.train import run_training
from labelbridge.errors import ConfigError

#: What :class:`CountFits` saw: its tag at fit start, the W&B run's summary at fit end.
FITS: list = []


class CountFits(L.Callback):
    """Records ``tag`` when a fit starts and the W&B run's summary when it ends (the
    engine builds it from its class path)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        FITS.append(self.tag)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                FITS.append(dict(logger.experiment.summary))


def _trainer(**changes) -> dict:
    return {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False, **changes}


def test_wandb_offline_mlflow_file_store_and_a_callback(tmp_path: Path, monkeypatch) -> None:
    wandb = pytest.importorskip("wandb", reason="pip install wandb (labelbridge[loggers])")
    mlflow = pytest.importorskip(
        "mlflow", reason="pip install mlflow-skinny (labelbridge[loggers])"
    )
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    FITS.clear()
    toy = make_toy_dataset(tmp_path / "toy", splits={"train": 8, "val": 2})
    cfg = toy_config(
        toy,
        tmp_path / "run",
        epochs=2,
        steps_per_epoch=2,
        finetune={"enabled": False},
        trainer=_trainer(
            loggers=[
                "csv",
                {"name": "wandb", "options": {"offline": True, "project": "lb"}},
                "mlflow",
            ],
            callbacks=[{"class_path": f"{__name__}.CountFits", "init_args": {"tag": "x"}}],
        ),
    )
    result = run_training(cfg)
    assert FITS[0] == "x"
    stage = result.out_dir / "train"
    assert not (stage / "logs" / "tensorboard").exists()  # not asked for
    assert (stage / "logs" / "csv" / "metrics.csv").is_file()
    scores = [h["val/toy/mIoU"] for h in result.history if h["stage"] == "train"]
    assert len(scores) == 2
    # MLflow's local store: one run named after the stage, with every validation's score
    client = mlflow.MlflowClient(
        tracking_uri=f"sqlite:///{(stage / 'logs' / 'mlflow.db').resolve()}"
    )
    (run,) = client.search_runs([client.get_experiment_by_name("labelbridge").experiment_id])
    assert run.info.run_name == "run/train"
    history = client.get_metric_history(run.info.run_id, "val/toy/mIoU")
    assert [m.value for m in history] == pytest.approx(scores)
    # W&B offline: the run got the last score, wrote its file, and was finished
    assert FITS[1]["val/toy/mIoU"] == pytest.approx(scores[-1])
    (offline,) = (stage / "logs" / "wandb" / "wandb").glob("offline-run-*")
    (record,) = offline.glob("run-*.wandb")
    assert record.stat().st_size > 0
    assert wandb.run is None


def test_loggers_may_change_when_a_run_resumes(tmp_path: Path) -> None:
    toy = make_toy_dataset(tmp_path / "toy", splits={"train": 8, "val": 2})
    kw = {"epochs": 1, "steps_per_epoch": 2, "finetune": {"enabled": False}}
    first = run_training(toy_config(toy, tmp_path / "run", **kw))
    again = run_training(toy_config(toy, tmp_path / "run", trainer=_trainer(loggers=["csv"]), **kw))
    assert again.metrics == first.metrics  # finished, skipped: not refused
    cb = _trainer(callbacks=[{"class_path": f"{__name__}.CountFits", "init_args": {"tag": "y"}}])
    with pytest.raises(ConfigError, match="trainer.callbacks"):
        run_training(toy_config(toy, tmp_path / "run", trainer=cb, **kw))


def test_bare_names_and_defaults() -> None:
    t = TrainerConfig.model_validate({"loggers": ["tensorboard", {"name": "csv"}]})
    assert [(x.name, x.options) for x in t.loggers] == [("tensorboard", {}), ("csv", {})]
    assert [x.name for x in TrainerConfig().loggers] == ["tensorboard", "csv"]
    with pytest.raises(ValueError, match="given twice"):
        TrainerConfig.model_validate({"loggers": ["csv", "csv"]})
    with pytest.raises(ValueError, match="neptune"):
        TrainerConfig.model_validate({"loggers": ["neptune"]})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"class_path": "no_such_module.Thing"}, "cannot import it"),
        ({"class_path": "pathlib.Path"}, "not a lightning.Callback subclass"),
        ({"class_path": f"{__name__}.CountFits", "init_args": {"bad": 1}}, "init_args"),
    ],
)
def test_bad_callbacks_are_refused_naming_them(entry: dict, message: str) -> None:
    t = TrainerConfig.model_validate({"callbacks": [entry]})
    with pytest.raises(ConfigError, match=f"trainer.callbacks: {entry['class_path']}.*{message}"):
        build_callbacks(t.callbacks)


def test_a_logger_option_it_does_not_take_is_refused(tmp_path: Path) -> None:
    t = TrainerConfig.model_validate({"loggers": [{"name": "csv", "options": {"colour": 1}}]})
    with pytest.raises(ConfigError, match=r"trainer.loggers: csv with options \{'colour': 1\}"):
        build_loggers(t.loggers, tmp_path)
