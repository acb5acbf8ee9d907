"""A run folder: its claim on the config it was trained with, the validation sets of its
stages, and its epilogue (export the final model, validate it, write ``metrics.json``).
Every training-like command (train, distill) opens and finishes its folder here and runs
its stages with :func:`labelbridge.engine.stage.resume_or_run_stage`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import BaseModel

from labelbridge.config import dump_config
from labelbridge.config.base import config_changes
from labelbridge.config.compat import comparable
from labelbridge.config.run import StageConfig
from labelbridge.data.torch_dataset import SegmentationTorchDataset
from labelbridge.engine.callbacks import STAGE_MARKER
from labelbridge.engine.datamodule import build_val_sets
from labelbridge.engine.stage import is_global_zero, validate_checkpoint
from labelbridge.errors import ConfigError
from labelbridge.files import write_json_atomic
from labelbridge.taxonomy import Taxonomy, load_taxonomy

#: The final model and its metrics inside a run folder.
FINAL_CHECKPOINT = "final.ckpt"
METRICS_FILE = "metrics.json"
#: The resolved config of a run folder.
RUN_CONFIG = "config.yaml"
#: Config keys that do not change what a run computes: a run folder may be resumed with
#: other values of these (the sanity check draws no random numbers, see
#: :class:`~labelbridge.engine.callbacks.RandomStateCallback`).
RESULT_NEUTRAL_KEYS = (
    "output",
    "num_workers",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.num_sanity_val_steps",
    "trainer.loggers",
)


def claim_run_folder(cfg: BaseModel, out: Path) -> None:
    """Record ``cfg`` as ``out/config.yaml``, unless the folder already holds training
    (a stage checkpoint or marker) done with other settings.

    A re-run with the same settings resumes; with other settings it would skip finished
    stages, or resume one half-way, under a config that does not describe the model.

    Raises:
        ConfigError: the folder's recorded config differs in a key that changes the
            result (every key but :data:`RESULT_NEUTRAL_KEYS`); the message lists them.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_CONFIG
    if path.is_file() and _holds_stage_work(out):
        try:
            old = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"{path}: cannot read the config this run folder was trained with ({exc}); "
                "use another output folder"
            ) from None
        changes = config_changes(
            comparable(old), comparable(cfg.model_dump(mode="json")), ignore=RESULT_NEUTRAL_KEYS
        )
        if changes:
            raise ConfigError(
                f"{path}: this run folder holds training done with other settings; changed: "
                f"{'; '.join(changes)}. Undo the changes to resume it, or train into another "
                f"folder (--out DIR; to start from this run's model, set "
                f"model.weights={out / FINAL_CHECKPOINT})"
            )
    dump_config(cfg, path)


def _holds_stage_work(out: Path) -> bool:
    """Whether any stage of the run folder has a checkpoint or a done-marker."""
    return any(out.glob("*/checkpoints/*.ckpt")) or any(out.glob(f"*/{STAGE_MARKER}"))


@dataclass
class RunFolder:
    """A claimed run folder with what every stage of the run validates on.

    Attributes:
        out: the run folder.
        taxonomy: the run's label space.
        val_sets: validation datasets, in the config's order.
        val_specs: their :func:`~labelbridge.engine.module.val_set_spec` descriptions.
    """

    out: Path
    taxonomy: Taxonomy
    val_sets: list[SegmentationTorchDataset]
    val_specs: list[dict[str, Any]]


def open_run(cfg: StageConfig, out_dir: Path | None = None) -> RunFolder:
    """Claim the run folder (``out_dir``, default ``cfg.output``; see
    :func:`claim_run_folder`) and build the validation sets.

    Raises:
        ConfigError / DatasetError: a folder trained with other settings, bad val sets.
    """
    out = Path(out_dir) if out_dir is not None else cfg.output_dir
    claim_run_folder(cfg, out)
    taxonomy = load_taxonomy(cfg.taxonomy)
    val_sets, val_specs = build_val_sets(cfg, taxonomy=taxonomy)
    return RunFolder(out=out, taxonomy=taxonomy, val_sets=val_sets, val_specs=val_specs)


def finish_run(
    cfg: StageConfig,
    run: RunFolder,
    *,
    best: Path,
    model_spec: str,
    export: Callable[[Path, Path], None],
    report: dict[str, Any],
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The epilogue of every run: ``export(best, <out>/final.ckpt)`` on rank 0, wait for
    it, validate the final model on every process (:func:`validate_checkpoint`), and write
    ``<out>/metrics.json`` (``{"checkpoint", "metrics", **report}``) on rank 0.

    Returns:
        ``(final checkpoint, its validation metrics)``.
    """
    final = run.out / FINAL_CHECKPOINT
    if is_global_zero():
        export(best, final)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    metrics = validate_checkpoint(
        cfg,
        final,
        model_spec=model_spec,
        taxonomy=run.taxonomy,
        val_sets=run.val_sets,
        val_specs=run.val_specs,
    )
    if is_global_zero():
        write_json_atomic(
            run.out / METRICS_FILE, {"checkpoint": str(final), "metrics": metrics, **report}
        )
    return final, metrics
