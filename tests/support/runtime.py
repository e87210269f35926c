"""Building configs for tests the way the operator would: from a VoiceAgent-shaped dict."""

from __future__ import annotations

import copy
from typing import Any

from kubevox_api import AgentRuntimeConfig


def base_spec() -> dict[str, Any]:
    return {
        "instructions": "You are the front desk of the Maple Street clinic. Be brief.",
        "greeting": "Hello, Maple Street clinic, how can I help?",
        "language": "en",
        "livekit": {"url": "ws://127.0.0.1:7880", "credentialsSecretRef": {"name": "lk"}},
        "stt": {"provider": "whisper"},
        "llm": {"provider": "openai", "model": "primary-model", "baseURL": "http://127.0.0.1:9/v1"},
        "tts": {"provider": "piper"},
    }


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def make_config(spec: dict[str, Any] | None = None, **top: Any) -> AgentRuntimeConfig:
    doc = {
        "name": "front-desk",
        "namespace": "clinic",
        "agentName": "front-desk",
        "spec": deep_merge(base_spec(), spec or {}),
        **top,
    }
    return AgentRuntimeConfig.model_validate(doc)
