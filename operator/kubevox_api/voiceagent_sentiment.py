"""How each caller feels, turn by turn (``spec.sentiment``): scored in the worker, off the
call's critical path, into the call record and live metrics a supervisor's dashboard reads.

The scorer is VADER (vaderSentiment): a lexicon and rules, no model and no torch, tens of
microseconds a turn; it reads English only. agent_runtime/sentiment.py does the scoring.
"""

from __future__ import annotations

from pydantic import Field

from .base import KubeModel

NEUTRAL_BAND = 0.05
"""VADER's own bounds: a score at or above +0.05 is positive, at or below -0.05 negative."""


class SentimentSpec(KubeModel):
    """Caller sentiment: each caller turn is scored from -1 (most negative) to +1 (most
    positive) once the agent's reply to it has been spoken, so scoring adds nothing to a turn.
    The call record carries every turn's score, the call's overall and ending sentiment, and
    whether it turned negative; metrics ``kubevox_caller_sentiment`` and
    ``kubevox_calls_turned_negative_total`` feed the dashboard. English only."""

    window_turns: int = Field(default=3, ge=1, le=20)
    """The caller turns whose mean is the call's current sentiment (its last ones), and its
    ``ending`` sentiment in the record: a mean, because one turn's score is often wrong."""
    negative_below: float = Field(default=-0.25, ge=-1.0, le=-NEUTRAL_BAND)
    """A call turns negative when the mean of its last ``windowTurns`` turns falls below this:
    counted in ``kubevox_calls_turned_negative_total`` and logged (``call turning negative``,
    with the room's name) each time it falls, so a supervisor can find the call."""
