"""SIGKILL at random moments, then resume (issue 9, item 3), through the real CLI on tiny
generated data: ``pseudo-label``, ``train`` and ``pipeline``, five kills each.

After every kill no visible output file may be empty or unparsable (temporary files and
a torn manifest tail are allowed until the next run) and no training checkpoint may go
back in global step; after the final resume there is no temporary, empty or unparsable
file anywhere, and the outputs equal an uninterrupted run's: pseudo-label files byte for
byte, training checkpoints at the same global step and epoch with the same validation
history, the pipeline with the same finished stages. See
``benchmarks.common.reliability.kill_resume_trials``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.common.reliability import SETUPS, kill_resume_trials

TRIALS = 5


@pytest.mark.slow
@pytest.mark.parametrize("stage", sorted(SETUPS))
def test_killed_stage_resumes_to_the_uninterrupted_result(stage: str, tmp_path: Path) -> None:
    results, _ = kill_resume_trials(
        stage, tmp_path, trials=TRIALS, seed=sorted(SETUPS).index(stage)
    )
    assert len(results) == TRIALS, "could not kill the stage while it was running"
    for r in results:
        assert not r.after_kill, (r.delay, r.progress, r.after_kill)
        assert not r.steps_back, (r.delay, r.steps_back)
    assert not results[-1].after_resume, results[-1].after_resume
    assert results[-1].identical, results[-1].detail
    # the kills hit different moments of the run, not all the same one
    assert len({r.progress for r in results}) >= 2, [r.progress for r in results]
