"""Caller sentiment (agent_runtime/sentiment.py, ``spec.sentiment``): each caller turn scored by
VADER once the agent's reply has been spoken, the call's running mean watched for a turn for the
worse, in the call record, its transcript and the live metrics."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubevox_api.runtime_config import config_hash
from livekit.agents import llm

from agent_runtime import metrics, sentiment
from agent_runtime.callrecord import CallRecord
from tests.support.runtime import make_config

HAPPY = "That's wonderful, thank you so much, you've been really helpful!"
ANGRY = "This is terrible. I'm furious, nobody ever helps me and I hate waiting."
PLAIN = "I need to change my appointment to Tuesday."


def test_vader_reads_a_turn_from_minus_one_to_plus_one() -> None:
    assert sentiment.score(HAPPY) > 0.5
    assert sentiment.score(ANGRY) < -0.5
    assert sentiment.label(sentiment.score(HAPPY)) == "positive"
    assert sentiment.label(sentiment.score(ANGRY)) == "negative"
    assert sentiment.label(sentiment.score(PLAIN)) == "neutral"
    assert sentiment.label(0.05) == "positive"
    assert sentiment.label(-0.05) == "negative"
    assert sentiment.label(0.0) == "neutral"


def _record(agent: str, **spec: Any) -> CallRecord:
    config = make_config(spec, name=agent)
    return CallRecord.of(config, "call-1", "room-of-" + agent, config_hash(config))


def _say(record: CallRecord, role: str, text: str) -> None:
    record.on_message(llm.ChatMessage(role=role, content=[text]))  # type: ignore[arg-type]


def _sample(name: str, record: CallRecord, **more: str) -> float:
    labels = dict(zip(metrics.CALL_LABELS, record.labels, strict=True)) | more
    return metrics.scrape_registry().get_sample_value(name, labels) or 0.0


def test_a_turn_is_scored_once_the_reply_to_it_is_spoken() -> None:
    """Not while the reply is being made: the caller's turn waits for the agent's message."""
    record = _record("sentiment-timing", sentiment={})
    assert record.sentiment is not None
    _say(record, "assistant", "Hello, Maple Street clinic, how can I help?")  # nothing to score
    assert record.sentiment.scores == []
    _say(record, "user", HAPPY)
    assert record.sentiment.scores == []
    _say(record, "assistant", "Glad to help.")
    assert record.sentiment.scores == [round(sentiment.score(HAPPY), 4)]
    assert _sample("kubevox_caller_sentiment_count", record) == 1


def test_the_record_carries_every_turn_the_overall_and_the_ending() -> None:
    """A call that starts well and ends badly: overall mixed, ending negative, turned negative;
    with logTranscripts each caller line carries its score. A turn left unreplied (the caller
    hung up) is scored when the call ends."""
    record = _record("sentiment-record", sentiment={"windowTurns": 2}, logTranscripts=True)
    _say(record, "assistant", "Hello, Maple Street clinic, how can I help?")
    for said in (HAPPY, PLAIN, ANGRY):
        _say(record, "user", said)
        _say(record, "assistant", "I see.")
    _say(record, "user", ANGRY)  # no reply: the caller hung up
    scores = [round(sentiment.score(t), 4) for t in (HAPPY, PLAIN, ANGRY, ANGRY)]

    out = record.finish("caller_hung_up")["sentiment"]

    assert out["turns"] == scores
    assert out["overall"] == pytest.approx(sum(scores) / 4, abs=1e-4)
    assert out["ending"] == pytest.approx(scores[-1], abs=1e-4)
    assert out["ending_label"] == "negative"
    assert out["turned_negative"] is True
    callers = [e for e in record.transcript if e["role"] == "user"]
    assert [e["sentiment"] for e in callers] == scores
    assert all("sentiment" not in e for e in record.transcript if e["role"] == "assistant")
    assert _sample("kubevox_caller_sentiment_count", record) == 4
    assert _sample("kubevox_caller_sentiment_bucket", record, le="-0.05") == 2


def test_a_call_turning_negative_is_counted_and_logged_each_time_it_falls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once per fall below negativeBelow, not once per negative turn: a call that recovers and
    falls again counts twice; the log names the room, so a supervisor can find the call."""
    record = _record("sentiment-falls", sentiment={"windowTurns": 2, "negativeBelow": -0.3})
    caplog.set_level(logging.WARNING, logger="kubevox.call")
    for said in (ANGRY, ANGRY, ANGRY, HAPPY, HAPPY, ANGRY, ANGRY):
        _say(record, "user", said)
        _say(record, "assistant", "I see.")
    assert record.sentiment is not None
    assert record.sentiment.turned_negative == 2
    assert _sample("kubevox_calls_turned_negative_total", record) == 2
    falls = [r for r in caplog.records if r.getMessage() == "call turning negative"]
    assert [getattr(r, "room", None) for r in falls] == ["room-of-sentiment-falls"] * 2


def test_a_calm_call_never_turns_negative() -> None:
    record = _record("sentiment-calm", sentiment={})
    for said in (PLAIN, HAPPY, PLAIN):
        _say(record, "user", said)
        _say(record, "assistant", "Of course.")
    out = record.finish()["sentiment"]
    assert out["turned_negative"] is False
    assert out["overall_label"] == "positive"
    assert _sample("kubevox_calls_turned_negative_total", record) == 0


def test_a_call_with_no_caller_turn_has_no_score() -> None:
    record = _record("sentiment-silent", sentiment={})
    _say(record, "assistant", "Hello, Maple Street clinic, how can I help?")
    assert record.finish("silence_timeout")["sentiment"] == {
        "overall": None,
        "overall_label": None,
        "ending": None,
        "ending_label": None,
        "turned_negative": False,
        "turns": [],
    }


def test_without_spec_sentiment_nothing_is_scored() -> None:
    record = _record("sentiment-off")
    assert record.sentiment is None
    _say(record, "user", ANGRY)
    _say(record, "assistant", "I see.")
    assert "sentiment" not in record.finish()
    assert _sample("kubevox_caller_sentiment_count", record) == 0


def test_the_series_exist_at_zero_before_the_first_call() -> None:
    """Started in each job process's prewarm: rate() cannot count a series' first sample."""
    metrics.start_sentiment_series("sentiment-prewarm", "clinic", "feedface")
    registry = metrics.scrape_registry()
    labels = {"agent": "sentiment-prewarm", "namespace": "clinic", "config_hash": "feedface"}
    assert registry.get_sample_value("kubevox_caller_sentiment_count", labels) == 0
    assert registry.get_sample_value("kubevox_calls_turned_negative_total", labels) == 0
