"""Building a text-mode or captured-audio call of the real Agent the way the runtime does, for
the runtime and LLM suites: the LLM spec pointing at local OpenAI-compatible stand-ins, the call
itself, its grounding, and what it said."""

from __future__ import annotations

import time
from typing import Any

from kubevox_api.runtime_config import config_hash
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice import io

from agent_runtime.call_data import call_data
from agent_runtime.callrecord import CallRecord
from agent_runtime.controls import TextControls
from agent_runtime.grounding import Grounding, KnowledgeSource
from agent_runtime.session import Call, build_call
from tests.support.servers.openai_server import OpenAIServer

from .runtime import make_config


def llm_spec(
    server: OpenAIServer,
    model: str = "primary-model",
    timeout: float = 5,
    fallbacks: list[OpenAIServer] | None = None,
) -> dict[str, Any]:
    return {
        "llm": {
            "provider": "openai",
            "model": model,
            "baseURL": server.base_url,
            "timeoutSeconds": timeout,
            "fallbacks": [
                {
                    "provider": "openai",
                    "model": f"fallback-{i}",
                    "baseURL": f.base_url,
                    "timeoutSeconds": timeout,
                }
                for i, f in enumerate(fallbacks or [])
            ],
        }
    }


def make_call(
    spec: dict[str, Any],
    *,
    grounding: Grounding | None = None,
    controls: TextControls | None = None,
    job_metadata: str | None = None,
) -> Call:
    """A text call of ``spec``'s agent; ``job_metadata`` as a dispatch would carry it."""
    cfg = make_config(spec)
    record = CallRecord.of(cfg, "call-1", "room-1", config_hash(cfg))
    return build_call(
        cfg,
        record=record,
        controls=controls or TextControls(),
        grounding=grounding,
        audio=False,
        env={},
        call_data=call_data(cfg, job_metadata),
    )


def text_of(msg: Any) -> str:
    return str(msg.event().item.text_content).strip()


def clinic_grounding(store: Any) -> Grounding:
    return Grounding(
        [KnowledgeSource("clinic-faq", store, top_k=2)], agent="front-desk", namespace="clinic"
    )


def session_closed(session: AgentSession[None]) -> Any:
    import asyncio

    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    session.on("close", lambda _ev: fut.done() or fut.set_result(None))
    return asyncio.wait_for(fut, 10)


CLINIC_KB = [
    {
        "name": "clinic-facts",
        "indexName": "kb-clinic-clinic-facts",
        "topK": 2,
        "minScore": 0.0,
        "embedding": {"provider": "local"},
        "redisUrlEnv": "KUBEVOX_KB_0_REDIS_URL",
    }
]
"""The runtime config's entry of the clinic's knowledge base (``knowledgeBases=``)."""

FRENCH_SPEC = {
    "language": "fr-FR",
    # The offline voices (whisper, piper) speak English only; text calls build neither anyway.
    "stt": {
        "provider": "deepgram",
        "model": "nova-3",
        "credentials": {"secretKeyRef": {"name": "voice-providers", "key": "deepgram"}},
    },
    "tts": {
        "provider": "cartesia",
        "credentials": {"secretKeyRef": {"name": "voice-providers", "key": "cartesia"}},
    },
}
"""A French-speaking agent (merged into a spec): its own phrases are the built-in French ones."""

TRANSFER_SPEC = {
    "telephony": {"sip": {"phoneNumbers": ["+15551234567"], "allowedAddresses": ["10.0.0.0/8"]}},
    "tools": {"transfer": {"to": "tel:+15557654321"}},
}


class CapturedOutput(io.AudioOutput):
    def __init__(self) -> None:
        super().__init__(label="test-capture", capabilities=io.AudioOutputCapabilities(pause=False))
        self.frames: list[rtc.AudioFrame] = []
        self._segment = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._segment == 0.0:
            self.on_playback_started(created_at=time.time())  # wall clock, as livekit expects
        self._segment += frame.duration
        self.frames.append(frame)

    def flush(self) -> None:
        super().flush()
        self.on_playback_finished(playback_position=self._segment, interrupted=False)
        self._segment = 0.0

    def clear_buffer(self) -> None:
        self.on_playback_finished(playback_position=self._segment, interrupted=True)
        self._segment = 0.0
