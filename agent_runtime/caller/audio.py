"""Audio for the simulated caller: what it says (Piper speech or a WAV file), how it hears the
agent (speech onset on the received samples), and what it heard (Whisper)."""

from __future__ import annotations

import asyncio
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..plugins.piper_tts import load_piper_voice
from ..plugins.whisper_stt import WHISPER_SAMPLE_RATE, load_whisper_model

FRAME_MS = 10

Samples = np.ndarray[Any, np.dtype[np.int16]]


@dataclass(frozen=True)
class Utterance:
    """Mono 16-bit PCM to publish, and the text it says."""

    text: str
    samples: Samples
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def synthesize(text: str) -> Utterance:
    """The caller's voice: Piper's bundled en_US voice (offline)."""
    voice = load_piper_voice()
    pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text))
    return Utterance(text, np.frombuffer(pcm, dtype=np.int16).copy(), voice.config.sample_rate)


def read_wav(path: Path, text: str = "") -> Utterance:
    """A mono 16-bit WAV file (the text, if known, is only for the report)."""
    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2:
            raise ValueError(f"{path}: 16-bit PCM WAV expected")
        frames = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)
        if f.getnchannels() > 1:
            frames = frames.reshape(-1, f.getnchannels()).mean(axis=1).astype(np.int16)
        return Utterance(text or path.name, frames.copy(), f.getframerate())


SPEECH_RMS = 300.0
"""RMS (int16 scale) above which a 10 ms frame counts as speech; the agent's TTS speaks far
above it and WebRTC comfort noise far below."""


def is_speech(samples: Samples) -> bool:
    if len(samples) == 0:
        return False
    rms = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)))
    return rms >= SPEECH_RMS


async def transcribe(samples: Samples, sample_rate: int) -> str:
    """What the caller heard, in words (Whisper tiny.en, offline)."""
    if len(samples) == 0:
        return ""
    audio = samples.astype(np.float32) / 32768.0
    if sample_rate != WHISPER_SAMPLE_RATE:
        positions = np.arange(0, len(audio), sample_rate / WHISPER_SAMPLE_RATE)
        audio = np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)

    def run() -> str:
        segments, _ = load_whisper_model().transcribe(audio, language="en", beam_size=1)
        return " ".join(s.text.strip() for s in segments).strip()

    return await asyncio.to_thread(run)
