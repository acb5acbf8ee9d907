"""The whole method in one run folder: teacher -> pseudo-labels -> student (-> source
fine-tune) -> further iterations, then one table of every model on every evaluation set.

Run folder layout (``cfg.run_dir``)::

    pipeline.yaml                  the resolved config of the run
    state.json                     completed stages (atomic writes)
    teacher/                       teacher training run (absent for a given teacher)
    iter1/pseudo_priors/<extra>/   pseudo-labels of round 1, priors arm
    iter1/student_priors/          student training run (incl. its fine-tune stage)
    iter1/pseudo_no_priors/ ...    the Naive Student arm, likewise
    iter2/...                      further rounds: each arm's student teaches its next round
    results.md, results.json       mIoU of teacher and students on every evaluation set

Every stage records its config fingerprint in ``state.json`` when it starts and its
outputs when it finishes. A re-run skips finished stages and re-enters an interrupted
one (training and pseudo-labelling resume from their own checkpoints / manifests). A
finished or started stage whose config changed is an error, never silently reused;
evaluations are recomputed when their inputs changed.

Example:
    >>> from labelbridge.config.pipeline import load_pipeline_config
    >>> result = run_pipeline(load_pipeline_config("configs/demo.yaml"))  # doctest: +SKIP
    >>> print(result.table)  # doctest: +SKIP
"""

from labelbridge.pipeline.evaluate import evaluate_checkpoint
from labelbridge.pipeline.plan import (
    Stage,
    build_pseudo_config,
    build_train_config,
    plan_stages,
    student_datasets,
)
from labelbridge.pipeline.results import (
    RESULTS_JSON,
    RESULTS_MD,
    ModelResult,
    PipelineResult,
    format_table,
)
from labelbridge.pipeline.runner import run_pipeline
from labelbridge.pipeline.state import (
    RESOLVED_CONFIG,
    STATE_FILE,
    RunState,
    fingerprint,
    stage_fingerprint,
)

__all__ = [
    "RESOLVED_CONFIG",
    "RESULTS_JSON",
    "RESULTS_MD",
    "STATE_FILE",
    "ModelResult",
    "PipelineResult",
    "RunState",
    "Stage",
    "build_pseudo_config",
    "build_train_config",
    "evaluate_checkpoint",
    "fingerprint",
    "format_table",
    "plan_stages",
    "run_pipeline",
    "stage_fingerprint",
    "student_datasets",
]
