"""Callbacks and run-folder bookkeeping of the training stages.

* :class:`HistoryCallback` records every validation's metrics and learning rates; its
  state travels in checkpoints, so a resumed stage keeps the earlier history.
* :class:`RandomStateCallback` saves the random number generators' states in every
  checkpoint and puts them back when a stage resumes, so a resumed stage draws the same
  augmentations and dropout masks as an uninterrupted one.
* :class:`ProgressLines` logs training progress with an ETA every few seconds where
  stderr is not a terminal (Lightning's bar draws nothing there until the end), and
  each validation's score; :class:`SummaryLine` says which model a stage trains, in one
  line instead of Lightning's summary table; where stderr is a terminal,
  :class:`StderrProgressBar` draws Lightning's bar there (never on stdout, which carries
  ``--json`` output).
* Stage markers: ``<stage dir>/stage_done.json``, written atomically (temporary file +
  rename) when a stage completes; a re-run skips a stage that has one.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import RichProgressBar

from labelbridge.files import write_json_atomic

#: Name of the file that marks a finished stage.
STAGE_MARKER = "stage_done.json"

log = logging.getLogger(__name__)


class ProgressLines(L.Callback):
    """Log ``"<stage>: epoch e/E, step s/S (p%), loss x, <elapsed> elapsed, about <eta>
    left"`` every ``interval`` seconds of training, and ``"<stage>: epoch e/E validated:
    <metric> x"`` after each validation (rank zero only). The ETA counts the steps left
    of ``max_epochs`` at this run's pace; early stopping may end the stage sooner.

    Args:
        stage: stage name the lines start with.
        interval: seconds between lines (default :func:`labelbridge.progress.line_interval`).
        metric: logged value shown after each validation.
    """

    def __init__(self, stage: str, *, interval: float | None = None, metric: str) -> None:
        from labelbridge.progress import line_interval

        self.stage, self.metric = stage, metric
        self.interval = line_interval() if interval is None else interval
        self._start = self._last = 0.0
        self._start_step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.monotonic()
        self._start_step = trainer.global_step

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        now = time.monotonic()
        if not trainer.is_global_zero or now - self._last < self.interval:
            return
        self._last = now
        log.info("%s", self.line(trainer, outputs, now))

    def line(self, trainer: L.Trainer, outputs: Any, now: float) -> str:
        """The progress line at the trainer's current step."""
        from labelbridge.progress import format_duration

        step, total = trainer.global_step, trainer.estimated_stepping_batches
        text = f"{self.stage}: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}, step {step}"
        if math.isfinite(total) and total > 0:
            text += f"/{int(total)} ({100.0 * step / total:.0f}%)"
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            text += f", loss {float(loss):.4g}"
        elapsed = now - self._start
        text += f", {format_duration(elapsed)} elapsed"
        done = step - self._start_step
        if done > 0 and math.isfinite(total) and total > step:
            text += f", about {format_duration((total - step) * elapsed / done)} left"
        return text

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit" or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get(self.metric)
        score = f"{float(value):.4f}" if value is not None else "not logged"
        log.info(
            "%s: epoch %d/%d validated: %s %s",
            self.stage,
            trainer.current_epoch + 1,
            trainer.max_epochs,
            self.metric,
            score,
        )


class StderrProgressBar(RichProgressBar):
    """Lightning's Rich progress bar drawn on stderr (Lightning's default bars draw on
    stdout, where ``--json`` output goes), without the logger version (``v_num``)."""

    def __init__(self) -> None:
        super().__init__(console_kwargs={"stderr": True})

    def get_metrics(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class SummaryLine(L.Callback):
    """Log ``"<stage>: model <spec>, <n> parameters (<m> trainable)"`` when fitting
    starts (rank zero), in place of Lightning's summary table.

    Args:
        stage: stage name.
        spec: model spec shown (the module's ``model_spec`` when ``None``).
    """

    def __init__(self, stage: str, spec: str | None = None) -> None:
        self.stage, self.spec = stage, spec

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        params = list(pl_module.parameters())
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        spec = self.spec or getattr(pl_module, "model_spec", type(pl_module).__name__)
        log.info(
            "%s: model %s, %s parameters (%s trainable)",
            self.stage,
            spec,
            f"{total:,}",
            f"{trainable:,}",
        )


class HistoryCallback(L.Callback):
    """Records, after each validation (not the sanity check), the epoch, global step,
    learning rates and every logged ``val/...`` metric.

    Args:
        stage: stage name stored with each entry (``"train"`` or ``"finetune"``).

    Attributes:
        history: list of ``{"stage", "epoch", "step", "lr": [...], "initial_lr": [...],
            <metric>: value}`` dicts, oldest first.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.history: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        entry: dict[str, Any] = {
            "stage": self.stage,
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
        }
        if trainer.optimizers:
            groups = trainer.optimizers[0].param_groups
            entry["lr"] = [float(g["lr"]) for g in groups]
            entry["initial_lr"] = [float(g.get("initial_lr", g["lr"])) for g in groups]
        for key, value in trainer.callback_metrics.items():
            if key.startswith("val/") or key.startswith("train/"):
                entry[key] = float(value)
        self.history.append(entry)

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


class RandomStateCallback(L.Callback):
    """Keeps the global random number generators (Python ``random``, numpy, torch CPU and
    every CUDA device) in the checkpoints and restores them when training resumes.

    Lightning restores weights, optimiser, schedulers, loops and callbacks, but not these
    generators, so a resumed stage used to draw other crops, flips, colour jitter and
    dropout masks than the uninterrupted run from the resumed epoch on. The states are
    taken when a checkpoint is written (after that epoch's validation) and put back at
    ``on_train_start``, i.e. after the sanity check, right where the uninterrupted run
    goes on with the next epoch.

    What this covers and what not:

    * The sampler is a pure function of ``(seed, epoch)``
      (:class:`~labelbridge.data.sampling.WeightedDatasetSampler`) and the data loaders
      draw their worker seeds from their own generator, so neither touches these states.
    * Data-loading workers draw no random numbers (augmentation runs on the batch in the
      training process), so their seeds do not change a result.
    * Under DDP the checkpoint holds rank 0's states and every rank gets them back; ranks
      are seeded alike and draw alike, so their states are equal anyway.
    * Non-deterministic kernels (some CUDA backward passes, cuDNN autotuning) still make
      two GPU runs differ in the last bits, resumed or not; ``trainer.deterministic:
      true`` removes that at a cost in speed. On CPU a resumed run is bit-identical.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "python": random.getstate(),
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state, self._pending = self._pending, None
        if not state:
            return
        random.setstate(state["python"])
        np.random.set_state(_numpy_state_from_plain(state["numpy"]))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    """numpy's legacy generator state as tensors and numbers (Lightning loads checkpoints
    with ``weights_only=True``, which refuses numpy arrays)."""
    name, keys, pos, has_gauss, gauss = state
    return {
        "name": str(name),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def _numpy_state_from_plain(plain: dict[str, Any]) -> tuple:
    keys = plain["keys"].numpy().astype(np.uint32)
    return (plain["name"], keys, plain["pos"], plain["has_gauss"], plain["gauss"])


def read_stage_marker(stage_dir: Path) -> dict[str, Any] | None:
    """The marker of a finished stage, or ``None`` when the stage has not finished.

    Its ``"best_checkpoint"`` is stored relative to ``stage_dir`` (so that a moved run
    folder still resumes; older markers hold absolute paths) and returned joined to it.
    """
    path = stage_dir / STAGE_MARKER
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if "best_checkpoint" in data:
        data["best_checkpoint"] = str(stage_dir / data["best_checkpoint"])
    return data


def write_stage_marker(stage_dir: Path, data: dict[str, Any]) -> None:
    """Mark a stage as finished (atomically), recording ``data`` (best checkpoint, score,
    history)."""
    write_json_atomic(stage_dir / STAGE_MARKER, data)
