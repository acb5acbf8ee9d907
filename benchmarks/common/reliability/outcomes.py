"""What a reliability case gives: the outcomes a case is classified as, the record of one
case (:class:`CaseResult`) and the outcome a bad-input case must have."""

from __future__ import annotations

from dataclasses import dataclass

#: Outcomes of a bad-input case.
CLEAR_ERROR = "clear error"
RECORDED_SKIP = "recorded skip"
RECORDED_FALLBACK = "recorded fallback"
FAILED = "FAILED"


@dataclass
class CaseResult:
    """What one case gave.

    Attributes:
        group: ``reader``, ``pseudo-label`` or ``cli``.
        name: the case, e.g. ``camvid/truncated_image``.
        mode: ``raise`` or ``skip`` (``-`` for configuration cases).
        outcome: :data:`CLEAR_ERROR`, :data:`RECORDED_SKIP` or :data:`FAILED`.
        detail: the message seen, or why the case failed.
    """

    group: str
    name: str
    mode: str
    outcome: str
    detail: str = ""


def expected_outcome(corruption: str, mode: str) -> str:
    """What a bad-input case must give: a clear error under ``raise`` and for an empty
    split; a recorded skip otherwise."""
    return CLEAR_ERROR if mode == "raise" or corruption == "empty_split" else RECORDED_SKIP
