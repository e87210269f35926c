"""The real deepgram/openai/cartesia plugins, configured by our registry, against local servers
speaking their protocols: what the registry configured must reach the wire."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest
from livekit import rtc
from livekit.agents import llm as lk_llm
from livekit.agents import utils

from agent_runtime import endpoint_llm
from agent_runtime.errors import ConfigError
from agent_runtime.providers import (
    LLM_PROVIDERS,
    STT_PROVIDERS,
    TTS_PROVIDERS,
    BuildContext,
    EndpointLLM,
    build_llm,
    build_stt,
    build_tts,
    check_providers,
    prewarm_providers,
)
from tests.support.cases import CLOUD_SPEECH
from tests.support.runtime import make_config
from tests.support.servers.cartesia_server import CartesiaServer, tone
from tests.support.servers.deepgram_server import DeepgramServer
from tests.support.servers.openai_server import OpenAIServer, Reply


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_deepgram_stream_carries_model_language_and_key(
    http: aiohttp.ClientSession,
) -> None:
    async with DeepgramServer(transcript="I need an appointment") as dg:
        cfg = make_config(
            {
                "language": "fr-FR",
                "stt": {
                    "provider": "deepgram",
                    "model": "nova-2",
                    "baseURL": f"{dg.url}/v1/listen",
                    "credentials": {"secretKeyRef": {"name": "dg", "key": "k"}},
                },
                "tts": CLOUD_SPEECH["tts"],  # piper speaks English only
            }
        )
        stt = build_stt(
            cfg.spec.stt,
            BuildContext(language=cfg.spec.language, http_session=http),
            env={"KUBEVOX_STT_API_KEY": "dg-secret"},
        )
        stream = stt.stream()
        pcm = tone(16000, 1.2)
        for i in range(0, len(pcm), 1600):
            chunk = pcm[i : i + 1600]
            stream.push_frame(rtc.AudioFrame(chunk, 16000, 1, len(chunk) // 2))
        stream.flush()
        final = None
        async with asyncio.timeout(10):
            async for ev in stream:
                if ev.type.name == "FINAL_TRANSCRIPT":
                    final = ev
                    break
        await stream.aclose()
        assert final is not None
        assert final.alternatives[0].text == "I need an appointment"
        conn = dg.connections[0]
        assert conn["query"]["model"] == "nova-2"
        assert conn["query"]["language"] == "fr-FR"
        assert conn["query"]["encoding"] == "linear16"
        assert conn["headers"]["Authorization"] == "Token dg-secret"
        assert conn["audio_bytes"] >= 32000


async def test_openai_chat_carries_model_key_and_sampling() -> None:
    async with OpenAIServer(default=Reply(text="We open at nine.")) as oa:
        cfg = make_config(
            {
                "llm": {
                    "provider": "openai",
                    "model": "gpt-test",
                    "baseURL": oa.base_url,
                    "temperature": 0.2,
                    "maxTokens": 64,
                    "timeoutSeconds": 3,
                    "credentials": {"secretKeyRef": {"name": "oa", "key": "k"}},
                }
            }
        )
        llm = build_llm(
            cfg.spec.llm,
            BuildContext(language="en"),
            env={"OPENAI_API_KEY": "sk-fallback", "KUBEVOX_LLM_API_KEY": "sk-kubevox"},
        )
        assert isinstance(llm, EndpointLLM)
        ctx = lk_llm.ChatContext()
        ctx.add_message(role="user", content="When do you open?")
        text = ""
        async with llm.chat(chat_ctx=ctx) as stream:
            async for chunk in stream:
                if chunk.delta and chunk.delta.content:
                    text += chunk.delta.content
        assert text == "We open at nine."
        req = oa.chat_requests[0]
        assert req.headers["Authorization"] == "Bearer sk-kubevox"  # kubevox variable wins
        assert req.body["model"] == "gpt-test"
        assert req.body["temperature"] == 0.2
        assert req.body["max_completion_tokens"] == 64
        assert req.body["stream"] is True
        assert req.body["messages"][-1] == {"role": "user", "content": "When do you open?"}


async def test_every_endpoint_uses_the_process_tls_context_and_closes_its_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One CA bundle read per process, not one per call (issue 20); the client made for the
    endpoint is closed with it."""
    made: list[object] = []
    real = endpoint_llm.httpx.create_ssl_context

    def counted(*args: object, **kwargs: object) -> object:
        made.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(endpoint_llm.httpx, "create_ssl_context", counted)
    endpoint_llm.tls_context.cache_clear()
    async with OpenAIServer(default=Reply(text="Nine.")) as oa:
        cfg = make_config({"llm": {"provider": "openai", "model": "m", "baseURL": oa.base_url}})
        llms = [
            build_llm(cfg.spec.llm, BuildContext(language="en"), env={"OPENAI_API_KEY": "k"})
            for _ in range(3)
        ]
        for llm in llms:  # each still talks to its endpoint
            ctx = lk_llm.ChatContext()
            ctx.add_message(role="user", content="When?")
            async with llm.chat(chat_ctx=ctx) as stream:
                async for _ in stream:
                    pass
        assert len(oa.chat_requests) == 3
        assert len(made) == 1
        for llm in llms:
            assert isinstance(llm, EndpointLLM)
            await llm.aclose()
            assert llm._client.is_closed()
    endpoint_llm.tls_context.cache_clear()


async def test_openai_falls_back_to_provider_variable() -> None:
    async with OpenAIServer() as oa:
        cfg = make_config({"llm": {"provider": "openai", "model": "m", "baseURL": oa.base_url}})
        llm = build_llm(cfg.spec.llm, BuildContext(language="en"), env={"OPENAI_API_KEY": "sk-env"})
        ctx = lk_llm.ChatContext()
        ctx.add_message(role="user", content="hi")
        async with llm.chat(chat_ctx=ctx) as stream:
            async for _ in stream:
                pass
        assert oa.chat_requests[0].headers["Authorization"] == "Bearer sk-env"


async def test_cartesia_stream_carries_model_voice_language_and_key(
    http: aiohttp.ClientSession,
) -> None:
    async with CartesiaServer() as cs:
        cfg = make_config(
            {
                "language": "de",
                "stt": {"provider": "whisper", "language": "en"},
                "tts": {
                    "provider": "cartesia",
                    "model": "sonic-2",
                    "voice": "voice-123",
                    "speed": 1.2,
                    "baseURL": cs.url,
                    "credentials": {"secretKeyRef": {"name": "c", "key": "k"}},
                },
            }
        )
        tts = build_tts(
            cfg.spec.tts,
            BuildContext(language=cfg.spec.language, http_session=http),
            env={"CARTESIA_API_KEY": "cart-key"},
        )
        stream = tts.stream()
        stream.push_text("Guten Tag. Wie kann ich helfen?")
        stream.end_input()
        frames = []
        async with asyncio.timeout(10):
            async for ev in stream:
                frames.append(ev.frame)
        await stream.aclose()
        audio = utils.merge_frames(frames)
        assert audio.duration > 0.1
        conn = cs.connections[0]
        assert conn["headers"]["X-API-Key"] == "cart-key"
        assert "cartesia_version" in conn["query"]
        first = cs.messages[0]
        assert first["model_id"] == "sonic-2"
        assert first["voice"]["id"] == "voice-123"
        assert first["language"] == "de"
        assert first["output_format"]["encoding"] == "pcm_s16le"
        assert "Guten Tag." in "".join(m.get("transcript", "") for m in cs.messages)


def test_missing_key_names_field_and_variables() -> None:
    cfg = make_config(
        {
            "tts": {
                "provider": "cartesia",
                "credentials": {"secretKeyRef": {"name": "c", "key": "k"}},
            }
        }
    )
    with pytest.raises(ConfigError) as e:
        check_providers(cfg, env={})
    assert str(e.value) == (
        "spec.tts.credentials: missing API key for cartesia: set KUBEVOX_TTS_API_KEY"
        " or CARTESIA_API_KEY"
    )
    # Text mode (chat, conversation tests) speaks no audio: only the language models count.
    check_providers(cfg, env={}, speech=False)


def test_missing_fallback_key_names_its_index() -> None:
    cfg = make_config(
        {
            "llm": {
                "fallbacks": [
                    {
                        "provider": "openai",
                        "model": "other",
                        "credentials": {"secretKeyRef": {"name": "o", "key": "k"}},
                    }
                ]
            }
        }
    )
    with pytest.raises(
        ConfigError,
        match=r"spec\.llm\.fallbacks\[0\]\.credentials: .*"
        r"KUBEVOX_LLM_FALLBACK_1_API_KEY or OPENAI_API_KEY",
    ):
        check_providers(cfg, env={})


def test_unknown_option_is_reported() -> None:
    cfg = make_config(
        {
            "stt": {
                "provider": "deepgram",
                "options": {"smartFormatt": True},
                "credentials": {"secretKeyRef": {"name": "d", "key": "k"}},
            }
        }
    )
    with pytest.raises(ConfigError, match=r"spec\.stt\.options\.smartFormatt: not an option"):
        check_providers(cfg, env={"DEEPGRAM_API_KEY": "x"})


def test_fallbacks_become_a_fallback_adapter_in_order() -> None:
    cfg = make_config(
        {
            "llm": {
                "timeoutSeconds": 2,
                "fallbacks": [
                    {
                        "provider": "openai",
                        "model": "second",
                        "baseURL": "http://127.0.0.1:8/v1",
                        "timeoutSeconds": 4,
                    }
                ],
            }
        }
    )
    llm = build_llm(cfg.spec.llm, BuildContext(language="en"), env={})
    assert isinstance(llm, lk_llm.FallbackAdapter)
    models = [i.model for i in llm._llm_instances]
    assert models == ["primary-model", "second"]
    assert [i.timeout_seconds for i in llm._llm_instances if isinstance(i, EndpointLLM)] == [2, 4]


def test_text_mode_loads_the_language_models_only(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    for registry, name in (
        (STT_PROVIDERS, "whisper"),
        (LLM_PROVIDERS, "local"),
        (TTS_PROVIDERS, "piper"),
    ):
        monkeypatch.setitem(
            registry,
            name,
            dataclasses.replace(registry[name], prewarm=lambda n=name: loaded.append(n)),
        )
    offline = {
        "stt": {"provider": "whisper"},
        "llm": {"provider": "local", "baseURL": None, "model": None},
        "tts": {"provider": "piper"},
    }
    prewarm_providers(make_config(offline), speech=False)
    assert loaded == ["local"]
    prewarm_providers(make_config(offline))
    assert loaded == ["local", "local", "whisper", "piper"]
