"""What a call consumed, in the units its providers bill (kubevox_api.pricing): counted per
model in ``kubevox_usage_total`` when the call ends, for the dashboard's estimated cost."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from kubevox_api.pricing import UsageUnit

from . import metrics


def units(usage: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, str, UsageUnit, float]]:
    """(provider, model, unit, amount) of each amount above zero in livekit's per-model usage
    (the call record's ``usage``)."""
    for item in usage:
        provider, model = str(item.get("provider", "")), str(item.get("model", ""))
        for unit, amount in _amounts(item):
            if amount > 0:
                yield provider, model, unit, amount


def _amounts(item: Mapping[str, Any]) -> Iterator[tuple[UsageUnit, float]]:
    kind = item.get("type")
    if kind == "llm_usage":
        cached = float(item.get("input_cached_tokens", 0))
        # livekit's input_tokens include the cached ones (OpenAI's prompt_tokens do).
        yield "llm_input_token", max(float(item.get("input_tokens", 0)) - cached, 0.0)
        yield "llm_cached_input_token", cached
        yield "llm_output_token", float(item.get("output_tokens", 0))
    elif kind == "stt_usage":
        yield "stt_audio_second", float(item.get("audio_duration", 0.0))
    elif kind == "tts_usage":
        yield "tts_character", float(item.get("characters_count", 0))


def count(agent: str, namespace: str, usage: Iterable[Mapping[str, Any]]) -> None:
    """Adds a call's usage to ``kubevox_usage_total``."""
    for provider, model, unit, amount in units(usage):
        metrics.usage_total.labels(agent, namespace, provider, model, unit).inc(amount)


LLM_UNITS: tuple[UsageUnit, ...] = ("llm_input_token", "llm_cached_input_token", "llm_output_token")


class Model(Protocol):
    """A livekit plugin's model, as it names itself in the call's usage."""

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...


def start_series(
    agent: str,
    namespace: str,
    llms: Iterable[Model],
    stt: Model | None = None,
    tts: Model | None = None,
) -> None:
    """The call's models' usage series, at 0 from the call's start: Prometheus' rate() cannot
    count a series' first sample, so a series that appeared only at the call's end, with its
    whole usage, would leave that call out of the dashboard's cost."""
    units: list[tuple[Model, UsageUnit]] = [(m, u) for m in llms for u in LLM_UNITS]
    units += [(stt, "stt_audio_second")] if stt is not None else []
    units += [(tts, "tts_character")] if tts is not None else []
    for model, unit in units:
        metrics.usage_total.labels(agent, namespace, model.provider, model.model, unit)
