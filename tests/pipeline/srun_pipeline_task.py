"""One srun task of a pipeline run, for ``test_srun_pipeline.py``.

``python srun_pipeline_task.py PIPELINE.yaml EVENTS.jsonl SLOW_SECONDS`` runs the real
pipeline runner with the real pseudo-labelling stage; the student's training stage only
builds the student's training sets the way :func:`~labelbridge.engine.train.run_training`
does (no Lightning) and records how many samples each has; evaluation is a stand-in.
The task's shard starts ``SLOW_SECONDS`` late (the slow shard). Each event is one JSON
line ``{"task", "event", "time", ...}`` appended to ``EVENTS.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def main(config: Path, events: Path, slow_seconds: float) -> None:
    """Run the pipeline of ``config`` as this srun task (``SLURM_PROCID``)."""
    from labelbridge.config.pipeline import load_pipeline_config
    from labelbridge.config.pseudo import PseudoLabelConfig
    from labelbridge.config.train import TrainConfig
    from labelbridge.engine.datamodule import build_train_sets
    from labelbridge.engine.stage_targets import StageTargets
    from labelbridge.pipeline import run_pipeline
    from labelbridge.pseudo.run import run_pseudo_label
    from labelbridge.taxonomy import load_taxonomy

    task = int(os.environ["SLURM_PROCID"])

    def record(event: str, **data: Any) -> None:
        line = json.dumps({"task": task, "event": event, "time": time.time(), **data})
        with open(events, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def pseudo(cfg: PseudoLabelConfig) -> list:
        time.sleep(slow_seconds)
        summaries = run_pseudo_label(cfg)
        record("pseudo_done", stage=Path(cfg.output).name)
        return summaries

    def train(cfg: TrainConfig) -> SimpleNamespace:
        record("student_start", stage=Path(cfg.output).name)
        targets = StageTargets.of_entries(cfg.datasets, cfg.partial_loss)
        sets = build_train_sets(
            cfg.datasets, taxonomy=load_taxonomy(cfg.taxonomy), resize=cfg.resize, targets=targets
        )
        record("student_datasets", sizes=[len(s) for s in sets])
        return SimpleNamespace(final_checkpoint=Path(cfg.output) / "final.ckpt")

    def evaluate(cfg: Any, *, checkpoint: str | None, teacher: Any = None) -> tuple[dict, dict]:
        return {e.report_name: 0.5 for e in cfg.evaluation_sets}, {}

    run_pipeline(
        load_pipeline_config(config), train_fn=train, pseudo_fn=pseudo, evaluate_fn=evaluate
    )
    record("pipeline_done")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))
