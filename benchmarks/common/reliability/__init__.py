"""Reliability cases shared by the tests (``tests/data/test_reliability_readers.py``,
``tests/pseudo/test_reliability_pseudo.py``, ``tests/engine/test_reliability_train.py``,
``tests/cli/test_cli_errors.py``, ``tests/engine/test_kill_resume.py``) and by
``benchmarks/reliability.py`` (issue 9).

Three families, each a function that sets a case up in a scratch folder, runs it
through the public API or the real console script, and classifies what happened:

* **bad input** (:func:`reader_case` in :mod:`~.corruptions`, :func:`pseudo_case` in
  :mod:`~.pseudo_cases`): a corrupted file of a tiny dataset in every published layout,
  read under ``on_error="raise"`` or ``"skip"``. Outcome :data:`CLEAR_ERROR` (a
  :class:`~labelbridge.errors.UserError` naming the file), :data:`RECORDED_SKIP` (the
  sample dropped and listed, every other label exact) or :data:`FAILED` (anything else: a
  crash without the file's name, a silent drop, a wrong label); the outcomes and
  :class:`CaseResult` are in :mod:`~.outcomes`. Resource faults (:data:`RESOURCE_CASES`
  in :mod:`~.resource_cases`: out of memory at a TTA scale, a full disk) give a clear
  error or :data:`RECORDED_FALLBACK`.
* **bad configuration** (:data:`CLI_CASES`, :func:`run_cli_case` in :mod:`~.cli_cases`):
  mappings, stage configs, checkpoints, run through ``labelbridge ...`` in a subprocess; a
  clear error is exit status 2, one ``error:`` paragraph naming the file and the problem,
  no traceback.
* **interruption** (:func:`kill_resume_trials` in :mod:`~.kill_trials`): a stage run by the
  real CLI (set up by :mod:`~.stages`) is killed with SIGKILL after a random delay, re-run
  to completion, and its outputs are compared with an uninterrupted run and audited for
  partial files (:func:`audit_outputs`).
"""

from __future__ import annotations

from .cli_cases import (
    CLI_CASES,
    CliCase,
    builtin_mapping_text,
    edited_mapping,
    line_of,
    run_cli_case,
)
from .corruptions import CORRUPTIONS, corrupt, layout_copy, reader_case, truncate
from .kill_trials import TrialResult, kill_resume_trials, stage_fingerprint, weights_digest
from .outcomes import (
    CLEAR_ERROR,
    FAILED,
    RECORDED_FALLBACK,
    RECORDED_SKIP,
    CaseResult,
    expected_outcome,
)
from .pseudo_cases import PSEUDO_MAPPING, pseudo_case, pseudo_config, tiny_checkpoint, tiny_teacher
from .resource_cases import (
    RESOURCE_CASES,
    disk_full_case,
    oom_fallback_case,
    oom_no_fallback_case,
)
from .stages import (
    CLI,
    SETUPS,
    StageSetup,
    audit_outputs,
    run_cli,
    run_to_end,
    setup_pipeline,
    setup_pseudo,
    setup_train,
)

__all__ = [
    "CLEAR_ERROR",
    "CLI",
    "CLI_CASES",
    "CORRUPTIONS",
    "FAILED",
    "PSEUDO_MAPPING",
    "RECORDED_FALLBACK",
    "RECORDED_SKIP",
    "RESOURCE_CASES",
    "SETUPS",
    "CaseResult",
    "CliCase",
    "StageSetup",
    "TrialResult",
    "audit_outputs",
    "builtin_mapping_text",
    "corrupt",
    "disk_full_case",
    "edited_mapping",
    "expected_outcome",
    "kill_resume_trials",
    "layout_copy",
    "line_of",
    "oom_fallback_case",
    "oom_no_fallback_case",
    "pseudo_case",
    "pseudo_config",
    "reader_case",
    "run_cli",
    "run_cli_case",
    "run_to_end",
    "setup_pipeline",
    "setup_pseudo",
    "setup_train",
    "stage_fingerprint",
    "tiny_checkpoint",
    "tiny_teacher",
    "truncate",
    "weights_digest",
]
