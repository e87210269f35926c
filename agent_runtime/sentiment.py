"""How the caller feels (``spec.sentiment``): each caller turn scored by VADER once the agent's
reply to it has been spoken, the call's running mean watched for a turn for the worse.

VADER (vaderSentiment) is a lexicon and rules: its lexicon ships in its wheel, it needs no
model, no torch and no network, and it scores a turn in 20 to 30 µs at the median
(bench/sentiment_eval.py). It reads English only (the API refuses ``sentiment`` for another
language).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from functools import cache
from statistics import fmean
from typing import Any, Literal

from kubevox_api.voiceagent_sentiment import NEUTRAL_BAND, SentimentSpec
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from . import metrics

log = logging.getLogger("kubevox.call")

Label = Literal["negative", "neutral", "positive"]


@cache
def analyzer() -> SentimentIntensityAnalyzer:
    """VADER, its lexicon read once per process (in the worker's prewarm, before any call)."""
    return SentimentIntensityAnalyzer()


def score(text: str) -> float:
    """From -1 (most negative) to +1 (most positive): VADER's compound score."""
    return float(analyzer().polarity_scores(text)["compound"])


def label(value: float) -> Label:
    """VADER's own reading of a score: positive from +0.05, negative from -0.05."""
    if value >= NEUTRAL_BAND:
        return "positive"
    if value <= -NEUTRAL_BAND:
        return "negative"
    return "neutral"


@dataclass
class CallSentiment:
    """One call's caller turns, scored one by one as the conversation goes."""

    spec: SentimentSpec
    labels: tuple[str, str, str]
    """The call metrics' labels: agent, namespace, configuration."""
    room: str
    scores: list[float] = field(default_factory=list)
    turned_negative: int = 0
    """Times the running mean fell below ``negativeBelow``."""
    _pending: list[tuple[str, MutableMapping[str, Any] | None]] = field(default_factory=list)
    _below: bool = False

    def caller_said(self, text: str, entry: MutableMapping[str, Any] | None = None) -> None:
        """A caller turn, scored later (:meth:`reply_spoken`); ``entry``, its line of the
        transcript, gets its score then."""
        if text.strip():
            self._pending.append((text, entry))

    def reply_spoken(self) -> None:
        """The agent has spoken its reply: the caller's turns before it are scored now, while
        the caller listens or speaks, not while the reply is being made."""
        for text, entry in self._pending:
            value = round(score(text), 4)
            self.scores.append(value)
            if entry is not None:
                entry["sentiment"] = value
            metrics.caller_sentiment.labels(*self.labels).observe(value)
        if self._pending:
            self._pending.clear()
            self._watch()

    def _watch(self) -> None:
        now = self.current
        below = now is not None and now < self.spec.negative_below
        if below and not self._below:
            self.turned_negative += 1
            metrics.calls_turned_negative.labels(*self.labels).inc()
            log.warning(
                "call turning negative",
                extra={"room": self.room, "sentiment": round(now or 0.0, 4)},
            )
        self._below = below

    @property
    def current(self) -> float | None:
        """The mean of the last ``windowTurns`` scores."""
        recent = self.scores[-self.spec.window_turns :]
        return fmean(recent) if recent else None

    def summary(self) -> dict[str, Any]:
        """The call record's ``sentiment``, any turn still unscored scored first."""
        self.reply_spoken()
        overall = fmean(self.scores) if self.scores else None
        ending = self.current
        return {
            "overall": _rounded(overall),
            "overall_label": label(overall) if overall is not None else None,
            "ending": _rounded(ending),
            "ending_label": label(ending) if ending is not None else None,
            "turned_negative": self.turned_negative > 0,
            "turns": self.scores,
        }


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None
