"""Assembling one call: providers from the registry, the AgentSession with the spec's turn
handling, the Agent, and the observers that feed metrics and the call record."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubevox_api import AgentRuntimeConfig
from livekit.agents import (
    AgentSession,
    APIConnectOptions,
    APIStatusError,
    APITimeoutError,
    inference,
    llm,
    stt,
    tts,
    vad,
)
from livekit.agents.types import NOT_GIVEN
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.events import (
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    UserInputTranscribedEvent,
)
from livekit.agents.voice.turn import TurnDetectionMode, TurnHandlingOptions

from . import metrics, usage
from .agent import KubevoxAgent
from .callrecord import CallRecord, model_usage
from .controls import CallControls
from .grounding import Grounding
from .providers import BuildContext, build_llm, build_stt, build_tts
from .recording import CallRecording
from .retrieval_prefetch import RetrievalPrefetch


def turn_handling(config: AgentRuntimeConfig, *, audio: bool = True) -> TurnHandlingOptions:
    spec = config.spec
    td = spec.turn_detection
    detection: TurnDetectionMode
    if not audio:
        detection = "manual"  # text turns end when the line is sent
    elif td.mode == "model":
        # The local model only, never LiveKit's cloud detector.
        detection = inference.TurnDetector(version="v1-mini")
    else:
        detection = td.mode
    return {
        "turn_detection": detection,
        "endpointing": {
            "min_delay": td.min_endpointing_delay_seconds,
            "max_delay": td.max_endpointing_delay_seconds,
        },
        "interruption": {
            "enabled": spec.interruptions.enabled,
            "mode": "vad",  # "adaptive" is a LiveKit cloud model
            "min_duration": spec.interruptions.min_duration_seconds,
            "min_words": spec.interruptions.min_words,
        },
        "preemptive_generation": {"enabled": td.preemptive_generation},
    }


def _error_kind(error: BaseException) -> str:
    if isinstance(error, APITimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, APIStatusError):
        return f"http_{error.status_code}"
    return type(error).__name__.removeprefix("API").lower() or "other"


def watch_provider_errors(
    provider: str, plugin: stt.STT[Any] | llm.LLM[Any] | tts.TTS[Any], labels: tuple[str, str]
) -> None:
    def on_error(ev: Any) -> None:
        metrics.provider_errors.labels(*labels, provider, _error_kind(ev.error)).inc()

    plugin.on("error", on_error)


@dataclass
class Call:
    session: AgentSession[None]
    agent: KubevoxAgent
    record: CallRecord
    llm: llm.LLM[Any]
    stt: stt.STT[Any] | None = None
    tts: tts.TTS[Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


CLOSE_OUTCOMES = {
    CloseReason.ERROR: "error",
    CloseReason.PARTICIPANT_DISCONNECTED: "caller_hung_up",
}
"""A call's outcome from why its session closed, unless the agent decided it first (it ended
the call, transferred it, or hit a limit)."""


def build_call(
    config: AgentRuntimeConfig,
    *,
    record: CallRecord,
    controls: CallControls,
    grounding: Grounding | None = None,
    audio: bool = True,
    vad_model: vad.VAD | None = None,
    http_session: Any = None,
    env: Mapping[str, str] = os.environ,
    silence_timeout: bool | None = None,
    call_data: Mapping[str, str] | None = None,
    recording: CallRecording | None = None,
) -> Call:
    """One call's session and agent. ``silence_timeout`` (default: on for audio calls, off for
    ``kubevox-agent chat`` on a terminal) ends the call when the caller stays silent."""
    spec = config.spec
    if silence_timeout is None:
        silence_timeout = audio
    labels = (config.name, config.namespace)
    ctx = BuildContext(language=spec.language, vad=vad_model, http_session=http_session)

    the_llm = build_llm(spec.llm, ctx, env)
    endpoints = the_llm._llm_instances if isinstance(the_llm, llm.FallbackAdapter) else [the_llm]
    for endpoint in endpoints:
        watch_provider_errors(spec.llm.provider, endpoint, labels)
    if isinstance(the_llm, llm.FallbackAdapter):

        def on_availability(ev: llm.AvailabilityChangedEvent) -> None:
            if not ev.available:
                metrics.llm_fallbacks.labels(*labels).inc()

        the_llm.on("llm_availability_changed", on_availability)

    the_stt = build_stt(spec.stt, ctx, env) if audio else None
    the_tts = build_tts(spec.tts, ctx, env) if audio else None
    if the_stt is not None:
        watch_provider_errors(spec.stt.provider, the_stt, labels)
    if the_tts is not None:
        watch_provider_errors(spec.tts.provider, the_tts, labels)
    usage.start_series(*labels, endpoints, the_stt, the_tts)

    session: AgentSession[None] = AgentSession(
        stt=the_stt if the_stt is not None else NOT_GIVEN,
        llm=the_llm,
        tts=the_tts if the_tts is not None else NOT_GIVEN,
        vad=vad_model if audio else None,
        turn_handling=turn_handling(config, audio=audio),
        # livekit marks the caller "away" after this much silence; the agent prompts, then ends.
        user_away_timeout=spec.silence_timeout_seconds if silence_timeout else None,
        # The FallbackAdapter does its own failover; one retry covers a single endpoint's blip.
        conn_options=SessionConnectOptions(
            llm_conn_options=APIConnectOptions(max_retry=1, retry_interval=0.5),
        ),
    )
    # On a call, the knowledge lookup starts at the caller's final transcript (inside the
    # endpointing delay) instead of when the turn ends; text turns retrieve in llm_node.
    prefetch = RetrievalPrefetch(grounding) if grounding is not None and audio else None
    agent = KubevoxAgent(
        config,
        record=record,
        controls=controls,
        grounding=prefetch or grounding,
        call_data=call_data,
        recording=recording,
    )

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage):
            record.on_message(ev.item)
            if prefetch is not None and ev.item.role == "user":
                prefetch.on_user_turn()

    def on_transcript(ev: UserInputTranscribedEvent) -> None:
        if prefetch is not None and ev.is_final:
            prefetch.on_final_transcript(ev.transcript)

    def on_close(ev: CloseEvent) -> None:
        outcome = CLOSE_OUTCOMES.get(ev.reason, "completed")
        record.usage = model_usage(session.usage.model_usage)
        if recording is not None:
            recording.call_closing()
        record.finish(outcome)
        if prefetch is not None:
            prefetch.close()

    session.on("conversation_item_added", on_item)
    session.on("user_input_transcribed", on_transcript)
    session.on("close", on_close)
    return Call(session=session, agent=agent, record=record, llm=the_llm, stt=the_stt, tts=the_tts)
