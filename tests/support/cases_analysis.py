"""Invalid ``spec.analysis``, ``spec.sentiment`` and ``spec.recording`` variants of the
VoiceAgent case (cases.py): rejected by pydantic and by the API server (CEL), naming the
field."""

from __future__ import annotations

from typing import Any

from .cases import BadCase, va

REDIS = {"redisUrlSecretRef": {"name": "r", "key": "u"}}
EVENTS = {"outbox": REDIS, "sinks": [{"name": "bus", "redisStream": REDIS}]}
GOOD: dict[str, Any] = {"summary": {}}
STORAGE = {
    "endpoint": "https://s3.example.com",
    "bucket": "calls",
    "accessKeyRef": {"name": "s3", "key": "access"},
    "secretKeyRef": {"name": "s3", "key": "secret"},
}
RECORDING: dict[str, Any] = {"notice": "This call may be recorded. All right?", "storage": STORAGE}
OWN_LLM = {"provider": "openai", "model": "a", "baseURL": "http://llm.example:8000/v1"}


def field(name: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "description": "d", **more}


ANALYSIS_CASES: list[BadCase] = [
    va("analysis-without-call-events", "spec.analysis", spec__analysis=GOOD),
    va(
        "analysis-not-sent",
        "spec.analysis",
        spec__analysis=GOOD,
        spec__callEvents=EVENTS | {"types": ["call.ended"]},
    ),
    va("analysis-of-nothing", "spec.analysis", spec__analysis={}, spec__callEvents=EVENTS),
    va(
        "analysis-by-the-local-model",
        "spec.analysis.llm.provider",
        spec__analysis=GOOD | {"llm": {"provider": "local"}},
        spec__callEvents=EVENTS,
    ),
    va(
        "analysis-by-the-agents-local-model",
        "spec.analysis.llm",
        spec__llm={"provider": "local"},
        spec__analysis=GOOD,
        spec__callEvents=EVENTS,
    ),
    va(
        "analysis-enum-of-a-number",
        "spec.analysis.structuredData.fields[0].enum",
        spec__analysis={"structuredData": {"fields": [field("n", type="number", enum=["1"])]}},
        spec__callEvents=EVENTS,
    ),
    va(
        "analysis-field-named-twice",
        "spec.analysis.structuredData.fields",
        spec__analysis={"structuredData": {"fields": [field("reason"), field("reason")]}},
        spec__callEvents=EVENTS,
    ),
    va(
        "analysis-field-name-not-a-key",
        "spec.analysis.structuredData.fields[0].name",
        spec__analysis={"structuredData": {"fields": [field("Reason for call")]}},
        spec__callEvents=EVENTS,
    ),
    va(
        "analysis-timeout-too-long",
        "spec.analysis.timeoutSeconds",
        spec__analysis=GOOD | {"llm": OWN_LLM, "timeoutSeconds": 3600},
        spec__callEvents=EVENTS,
    ),
    va("sentiment-in-french", "spec.sentiment", spec__language="fr", spec__sentiment={}),
    va(
        "sentiment-window-of-no-turn",
        "spec.sentiment.windowTurns",
        spec__sentiment={"windowTurns": 0},
    ),
    va(
        "sentiment-negative-above-neutral",
        "spec.sentiment.negativeBelow",
        spec__sentiment={"negativeBelow": 0.2},
    ),
    va(
        "recording-consent-in-japanese",
        "spec.recording.consent",
        spec__language="ja",
        spec__recording=RECORDING,
    ),
    va("recording-without-notice", "spec.recording.notice", spec__recording={"storage": STORAGE}),
    va(
        "recording-endpoint-with-a-path",
        "spec.recording.storage.endpoint",
        spec__recording=RECORDING | {"storage": STORAGE | {"endpoint": "https://s3.example.com/b"}},
    ),
    va(
        "recording-bucket-not-a-bucket-name",
        "spec.recording.storage.bucket",
        spec__recording=RECORDING | {"storage": STORAGE | {"bucket": "Calls_2026"}},
    ),
    va(
        "recording-kept-no-day",
        "spec.recording.retentionDays",
        spec__recording=RECORDING | {"retentionDays": 0},
    ),
    va(
        "recording-consent-key-of-two-keys",
        "spec.recording.consentKey",
        spec__recording=RECORDING | {"consentKey": "12"},
    ),
]
