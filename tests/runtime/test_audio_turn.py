"""A full offline audio turn through the real Agent: piper speech in -> VAD -> whisper ->
scripted LLM (local OpenAI server) -> piper out. No room: the session's audio input/output are
fed and captured directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from livekit import rtc
from livekit.agents import inference, llm, utils
from livekit.agents.voice import io
from livekit.agents.voice.events import ConversationItemAddedEvent

from agent_runtime import metrics
from agent_runtime.callrecord import CallRecord
from agent_runtime.controls import TextControls
from agent_runtime.plugins import PiperTTS
from agent_runtime.session import build_call
from tests.support.calls import CapturedOutput
from tests.support.runtime import make_config
from tests.support.servers.openai_server import OpenAIServer, Reply

SAMPLE_RATE = 16000
FRAME = SAMPLE_RATE // 50  # 20 ms


class SpeechInput(io.AudioInput):
    """Plays a recorded utterance, then silence, at twice real time."""

    def __init__(self, speech: rtc.AudioFrame) -> None:
        super().__init__(label="test-speech")
        pcm = bytes(speech.data) + b"\x00\x00" * SAMPLE_RATE  # + 1 s of silence
        self._frames = [pcm[i : i + FRAME * 2] for i in range(0, len(pcm), FRAME * 2)]

    async def __anext__(self) -> rtc.AudioFrame:
        await asyncio.sleep(0.01)
        chunk = self._frames.pop(0) if self._frames else b"\x00\x00" * FRAME
        chunk = chunk.ljust(FRAME * 2, b"\x00")
        return rtc.AudioFrame(chunk, SAMPLE_RATE, 1, FRAME)


async def piper_speech(text: str) -> rtc.AudioFrame:
    tts = PiperTTS()
    frames = [ev.frame async for ev in tts.synthesize(text)]
    speech = utils.merge_frames(frames)
    resampler = rtc.AudioResampler(speech.sample_rate, SAMPLE_RATE, num_channels=1)
    return utils.merge_frames(resampler.push(speech) + resampler.flush())


@pytest.fixture
async def scripted_llm() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer(default=Reply(text="The pharmacy opens at nine on Saturdays.")) as s:
        yield s


def count(name: str) -> float:
    v = metrics.scrape_registry().get_sample_value(
        name + "_count", {"agent": "front-desk", "namespace": "clinic", "config_hash": ""}
    )
    return v or 0.0


@pytest.mark.voice
async def test_offline_audio_turn(scripted_llm: OpenAIServer) -> None:
    speech = await piper_speech("What time does the pharmacy open on Saturday?")
    cfg = make_config(
        {
            "greeting": None,
            "llm": {"baseURL": scripted_llm.base_url},
            "turnDetection": {"mode": "vad", "minEndpointingDelaySeconds": 0.3},
            "logTranscripts": True,
        }
    )
    before = {n: count(n) for n in (metrics.E2E, metrics.LLM_TTFT, metrics.TTS_TTFB)}
    record = CallRecord(
        call_id="audio-1", room="r", agent=cfg.name, namespace=cfg.namespace, log_transcripts=True
    )
    call = build_call(
        cfg, record=record, controls=TextControls(), vad_model=inference.VAD(), env={}
    )
    output = CapturedOutput()
    replied = asyncio.Event()

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "assistant":
            replied.set()

    call.session.on("conversation_item_added", on_item)
    call.session.input.audio = SpeechInput(speech)
    call.session.output.audio = output
    async with call.session as session:
        await session.start(call.agent)
        await asyncio.wait_for(replied.wait(), 60)

    users = [t["text"] for t in record.transcript if t["role"] == "user"]
    assert len(users) == 1
    assert "pharmacy open on saturday" in users[0].lower()
    assert scripted_llm.chat_requests[0].body["messages"][-1]["role"] == "user"
    reply_audio = sum(f.duration for f in output.frames)
    assert reply_audio > 1.0  # piper spoke the scripted answer
    e2e = record.turns[0].e2e
    assert e2e is not None
    assert 0 < e2e < 10
    for name, was in before.items():
        assert count(name) > was, name
