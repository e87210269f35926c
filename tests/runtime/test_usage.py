"""What a call consumed, in billed units (agent_runtime/usage.py): livekit's per-model usage as
the call record carries it, turned into ``kubevox_usage_total`` per model and unit."""

from __future__ import annotations

from dataclasses import dataclass

from livekit.agents.metrics.usage import LLMModelUsage, STTModelUsage, TTSModelUsage

from agent_runtime import metrics, usage
from agent_runtime.callrecord import CallRecord, model_usage

RECORDED = model_usage(
    [
        LLMModelUsage(provider="api.openai.com", model="gpt-4o-mini", input_tokens=1200,
                      input_cached_tokens=1000, output_tokens=80),
        STTModelUsage(provider="deepgram", model="nova-3", audio_duration=42.5),
        TTSModelUsage(provider="cartesia", model="sonic-2", characters_count=310,
                      audio_duration=20.0),
        TTSModelUsage(provider="piper", model="en_US-joe-medium"),  # nothing said
    ]
)  # fmt: skip


def test_units_of_each_model_in_what_its_provider_bills() -> None:
    """Input tokens apart from the cached ones (livekit counts the cached in input_tokens),
    output tokens, seconds of audio transcribed, characters synthesized; nothing for a model
    that consumed nothing."""
    assert sorted(usage.units(RECORDED)) == [
        ("api.openai.com", "gpt-4o-mini", "llm_cached_input_token", 1000.0),
        ("api.openai.com", "gpt-4o-mini", "llm_input_token", 200.0),
        ("api.openai.com", "gpt-4o-mini", "llm_output_token", 80.0),
        ("cartesia", "sonic-2", "tts_character", 310.0),
        ("deepgram", "nova-3", "stt_audio_second", 42.5),
    ]


def _counted(agent: str, model: str, unit: str) -> float:
    labels = {"agent": agent, "namespace": "clinic", "model": model, "unit": unit}
    provider = {"gpt-4o-mini": "api.openai.com", "nova-3": "deepgram", "sonic-2": "cartesia"}
    value = metrics.scrape_registry().get_sample_value(
        "kubevox_usage_total", labels | {"provider": provider[model]}
    )
    return value or 0.0


def test_a_call_record_counts_its_usage_once_when_it_ends() -> None:
    """finish() adds the call's usage to the counter once (finish is idempotent: the record
    logged is the one sent, and counted)."""
    agent = "usage-test-agent"
    record = CallRecord(call_id="c1", room="r1", agent=agent, namespace="clinic")
    record.usage = RECORDED
    record.finish()
    record.finish()
    assert _counted(agent, "gpt-4o-mini", "llm_input_token") == 200.0
    assert _counted(agent, "gpt-4o-mini", "llm_output_token") == 80.0
    assert _counted(agent, "nova-3", "stt_audio_second") == 42.5
    assert _counted(agent, "sonic-2", "tts_character") == 310.0


@dataclass(frozen=True)
class _Model:
    provider: str
    model: str


def test_a_call_s_usage_series_exist_at_zero_from_its_start() -> None:
    """Prometheus' rate() does not count a series' first sample: the series of the call's
    models are there, at 0, before the call's end adds to them."""
    agent = "usage-start-agent"
    llms = [_Model("api.openai.com", "gpt-4o-mini"), _Model("backup.example", "llama")]
    usage.start_series(agent, "clinic", llms, _Model("deepgram", "nova-3"), None)
    registry = metrics.scrape_registry()

    def value(provider: str, model: str, unit: str) -> float | None:
        labels = {"agent": agent, "namespace": "clinic", "provider": provider, "model": model}
        return registry.get_sample_value("kubevox_usage_total", labels | {"unit": unit})

    for unit in ("llm_input_token", "llm_cached_input_token", "llm_output_token"):
        assert value("api.openai.com", "gpt-4o-mini", unit) == 0
        assert value("backup.example", "llama", unit) == 0
    assert value("deepgram", "nova-3", "stt_audio_second") == 0
    assert value("deepgram", "nova-3", "tts_character") is None  # no such unit of an STT
