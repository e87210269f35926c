"""One registry turning a VoiceAgent's stt/llm/tts into livekit plugin instances.

Each provider is one table entry: its constructor and the variable its own SDK reads for the
API key. Keys come from the kubevox variable the operator sets (``credential_env``) first, then
from the provider's usual variable, so ``kubevox-agent chat`` works on a laptop.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp
import httpx2 as httpx
from kubevox_api import (
    PROVIDER_ENV,
    AgentRuntimeConfig,
    LLMEndpoint,
    LLMSpec,
    STTSpec,
    TTSSpec,
    credential_env,
)
from kubevox_api.languages import primary_language
from livekit.agents import llm, stt, tts, vad
from livekit.agents.types import NOT_GIVEN
from livekit.plugins import cartesia, deepgram, openai

from .endpoint_llm import EndpointLLM, tls_context
from .errors import ConfigError
from .plugins import (
    LocalLLM,
    PiperTTS,
    WhisperSTT,
    load_local_model,
    load_piper_voice,
    load_whisper_model,
)

SpecT = TypeVar("SpecT", STTSpec, LLMEndpoint, TTSSpec)
PluginT = TypeVar("PluginT", stt.STT[Any], llm.LLM[Any], tts.TTS[Any])

# An OpenAI-compatible self-hosted server may need no key, but the SDK insists on one.
NO_KEY = "unused"


@dataclass(frozen=True)
class BuildContext:
    """What a provider needs besides its own spec."""

    language: str
    """The agent's conversation language (spec.language)."""
    vad: vad.VAD | None = None
    """Segments audio for non-streaming STT (whisper)."""
    http_session: aiohttp.ClientSession | None = None
    """None inside a job: the plugins then use the job's shared session."""


@dataclass(frozen=True)
class Provider(Generic[SpecT, PluginT]):
    build: Callable[[SpecT, str | None, BuildContext], PluginT]
    """Constructor: (spec, api key or None, context) -> plugin."""
    plugin: type[Any]
    """The plugin class; its signature tells which ``options`` keys are valid."""
    key_required: Callable[[SpecT], bool] = lambda _spec: False
    prewarm: Callable[[], object] | None = None
    """Makes what the provider needs once per process (offline models, a TLS context), before
    any call."""


def _opts(spec: STTSpec | LLMEndpoint | TTSSpec) -> dict[str, Any]:
    return dict(spec.options)


def _given(value: Any) -> Any:
    return NOT_GIVEN if value is None else value


# --- STT -----------------------------------------------------------------------------------


def _deepgram_stt(spec: STTSpec, key: str | None, ctx: BuildContext) -> stt.STT[Any]:
    kwargs: dict[str, Any] = {
        "model": spec.model or "nova-3",
        "language": spec.language or ctx.language,
        "api_key": key,
        "http_session": ctx.http_session,
    }
    if spec.base_url:
        kwargs["base_url"] = spec.base_url
    return deepgram.STT(**(kwargs | _opts(spec)))


def _whisper_stt(spec: STTSpec, _key: str | None, ctx: BuildContext) -> stt.STT[Any]:
    if ctx.vad is None:
        raise ConfigError("stt.provider whisper needs voice activity detection (no VAD given)")
    whisper = WhisperSTT(
        model=spec.model or "tiny.en", language=spec.language or ctx.language, **_opts(spec)
    )
    # Whisper decodes whole utterances: the VAD cuts the caller's audio into them.
    return stt.StreamAdapter(stt=whisper, vad=ctx.vad)


# --- LLM -----------------------------------------------------------------------------------


def _openai_llm(spec: LLMEndpoint, key: str | None, _ctx: BuildContext) -> llm.LLM[Any]:
    kwargs: dict[str, Any] = {
        "model": spec.model or "gpt-4.1-mini",
        "api_key": key or NO_KEY,
        "base_url": _given(spec.base_url),
        "temperature": _given(spec.temperature),
        "max_completion_tokens": _given(spec.max_tokens),
        "timeout": httpx.Timeout(spec.timeout_seconds, connect=min(spec.timeout_seconds, 5.0)),
    }
    return EndpointLLM(timeout_seconds=spec.timeout_seconds, **(kwargs | _opts(spec)))


def _local_llm(spec: LLMEndpoint, _key: str | None, ctx: BuildContext) -> llm.LLM[Any]:
    return LocalLLM(
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        language=ctx.language,
        **_opts(spec),
    )


# --- TTS -----------------------------------------------------------------------------------


def _cartesia_tts(spec: TTSSpec, key: str | None, ctx: BuildContext) -> tts.TTS[Any]:
    kwargs: dict[str, Any] = {
        "model": spec.model or "sonic-3",
        "language": primary_language(ctx.language),
        "api_key": key,
        "http_session": ctx.http_session,
    }
    if spec.voice:
        kwargs["voice"] = spec.voice
    if spec.speed is not None:
        kwargs["speed"] = spec.speed
    if spec.base_url:
        kwargs["base_url"] = spec.base_url
    return cartesia.TTS(**(kwargs | _opts(spec)))


def _piper_tts(spec: TTSSpec, _key: str | None, _ctx: BuildContext) -> tts.TTS[Any]:
    # Piper's length_scale is the inverse of a speaking rate.
    length_scale = 1.0 / spec.speed if spec.speed else None
    voice = spec.voice or "en_US-joe-medium"
    return PiperTTS(voice=voice, length_scale=length_scale, **_opts(spec))


def _always(_spec: Any) -> bool:
    return True


STT_PROVIDERS: dict[str, Provider[STTSpec, stt.STT[Any]]] = {
    "deepgram": Provider(_deepgram_stt, deepgram.STT, key_required=_always),
    "whisper": Provider(_whisper_stt, WhisperSTT, prewarm=load_whisper_model),
}
LLM_PROVIDERS: dict[str, Provider[LLMEndpoint, llm.LLM[Any]]] = {
    # A self-hosted OpenAI-compatible server (baseURL) may run without a key.
    "openai": Provider(
        _openai_llm, openai.LLM, key_required=lambda s: s.base_url is None, prewarm=tls_context
    ),
    "local": Provider(_local_llm, LocalLLM, prewarm=load_local_model),
}
TTS_PROVIDERS: dict[str, Provider[TTSSpec, tts.TTS[Any]]] = {
    "cartesia": Provider(_cartesia_tts, cartesia.TTS, key_required=_always),
    "piper": Provider(_piper_tts, PiperTTS, prewarm=load_piper_voice),
}


def prewarm_providers(config: AgentRuntimeConfig, *, speech: bool = True) -> None:
    """Load the offline models the agent's providers use (once per job process); with
    ``speech=False`` (text mode) the language models' only."""
    spec = config.spec
    loaders = [LLM_PROVIDERS[e.provider].prewarm for e in (spec.llm, *spec.llm.fallbacks)]
    if speech:
        loaders += [
            STT_PROVIDERS[spec.stt.provider].prewarm,
            TTS_PROVIDERS[spec.tts.provider].prewarm,
        ]
    for load in loaders:
        if load is not None:
            load()


# --- credentials and checks ----------------------------------------------------------------


def resolve_key(
    field: str,
    provider: str,
    kubevox_var: str,
    required: bool,
    env: Mapping[str, str],
) -> str | None:
    """The API key: the kubevox variable, else the provider's own; missing+required -> error."""
    provider_var = PROVIDER_ENV.get(provider)
    for var in (kubevox_var, provider_var):
        if var and env.get(var):
            return env[var]
    if required:
        alt = f" or {provider_var}" if provider_var else ""
        raise ConfigError(f"{field}: missing API key for {provider}: set {kubevox_var}{alt}")
    return None


def _check_options(
    field: str, provider: str, plugin: type[Any], options: Mapping[str, Any]
) -> None:
    params = inspect.signature(plugin.__init__).parameters
    for name in options:
        if name not in params or name == "self":
            raise ConfigError(f"{field}.options.{name}: not an option of provider {provider}")


class _AnyKey(dict[str, str]):
    """An environment in which every variable is set."""

    def get(self, key: str, default: object = None) -> str:
        return "set"

    def __getitem__(self, key: str) -> str:
        return "set"


def _endpoints(spec: LLMSpec) -> list[tuple[str, int, LLMEndpoint]]:
    out: list[tuple[str, int, LLMEndpoint]] = [("spec.llm", 0, spec)]
    out += [(f"spec.llm.fallbacks[{i}]", i + 1, f) for i, f in enumerate(spec.fallbacks)]
    return out


def check_providers(
    config: AgentRuntimeConfig,
    env: Mapping[str, str] = os.environ,
    *,
    credentials: bool = True,
    speech: bool = True,
) -> None:
    """Everything the registry will need, checked up front: one ConfigError naming the field.
    ``credentials=False`` checks providers and options only (validating a manifest offline);
    ``speech=False`` the language models only (text mode: chat, conversation tests)."""
    spec = config.spec
    if not credentials:
        env = _AnyKey()
    models = [(field, credential_env("llm", idx), ep) for field, idx, ep in _endpoints(spec.llm)]
    if spec.analysis_llm is not None:
        models.append(("spec.analysis.llm", credential_env("analysis"), spec.analysis_llm))
    for field, key_env, ep in models:
        p = LLM_PROVIDERS[ep.provider]
        _check_options(field, ep.provider, p.plugin, ep.options)
        resolve_key(f"{field}.credentials", ep.provider, key_env, p.key_required(ep), env)
    if not speech:
        return
    s = STT_PROVIDERS[spec.stt.provider]
    _check_options("spec.stt", spec.stt.provider, s.plugin, spec.stt.options)
    resolve_key(
        "spec.stt.credentials",
        spec.stt.provider,
        credential_env("stt"),
        s.key_required(spec.stt),
        env,
    )
    t = TTS_PROVIDERS[spec.tts.provider]
    _check_options("spec.tts", spec.tts.provider, t.plugin, spec.tts.options)
    resolve_key(
        "spec.tts.credentials",
        spec.tts.provider,
        credential_env("tts"),
        t.key_required(spec.tts),
        env,
    )


# --- building ------------------------------------------------------------------------------


def build_stt(
    spec: STTSpec, ctx: BuildContext, env: Mapping[str, str] = os.environ
) -> stt.STT[Any]:
    p = STT_PROVIDERS[spec.provider]
    key = resolve_key(
        "spec.stt.credentials", spec.provider, credential_env("stt"), p.key_required(spec), env
    )
    return p.build(spec, key, ctx)


def build_llm_endpoint(
    endpoint: LLMEndpoint,
    field: str,
    key_env: str,
    ctx: BuildContext,
    env: Mapping[str, str] = os.environ,
) -> llm.LLM[Any]:
    """One language model; its API key from ``key_env`` (or the provider's own variable), a
    missing one reported as ``<field>.credentials``."""
    p = LLM_PROVIDERS[endpoint.provider]
    key = resolve_key(
        f"{field}.credentials", endpoint.provider, key_env, p.key_required(endpoint), env
    )
    return p.build(endpoint, key, ctx)


def build_llm_endpoints(
    spec: LLMSpec, ctx: BuildContext, env: Mapping[str, str] = os.environ
) -> list[llm.LLM[Any]]:
    """The primary and its fallbacks, in order."""
    return [
        build_llm_endpoint(ep, field, credential_env("llm", idx), ctx, env)
        for field, idx, ep in _endpoints(spec)
    ]


def build_llm(
    spec: LLMSpec, ctx: BuildContext, env: Mapping[str, str] = os.environ
) -> llm.LLM[Any]:
    """One LLM, or livekit's FallbackAdapter over the ordered endpoints."""
    endpoints = build_llm_endpoints(spec, ctx, env)
    if len(endpoints) == 1:
        return endpoints[0]
    longest = max(e.timeout_seconds for e in endpoints if isinstance(e, EndpointLLM))
    # Each endpoint enforces its own timeout; the adapter's is only an outer bound.
    return llm.FallbackAdapter(endpoints, attempt_timeout=longest + 1.0, max_retry_per_llm=0)


def build_tts(
    spec: TTSSpec, ctx: BuildContext, env: Mapping[str, str] = os.environ
) -> tts.TTS[Any]:
    p = TTS_PROVIDERS[spec.provider]
    key = resolve_key(
        "spec.tts.credentials", spec.provider, credential_env("tts"), p.key_required(spec), env
    )
    return p.build(spec, key, ctx)
