"""The VoiceAgent's model providers: speech-to-text, the language model and text-to-speech."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel, Rule
from .common import HTTP_URL, LANGUAGE_TAG, Credentials, ShortString

ProviderOptions = Annotated[
    dict[str, str | int | float | bool],
    Field(
        max_length=32,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    ),
]
"""Extra provider settings passed to the provider's client as keyword arguments."""


LOCAL_PROVIDERS = frozenset({"whisper", "local", "piper"})
"""Providers whose model runs inside the worker pod (its CPU and memory, sizing.py)."""


class ProviderBase(KubeModel):
    """Fields every speech or language provider has."""

    model: ShortString | None = None
    """Provider model. Defaults to the provider's recommended model."""
    base_url: Annotated[str, StringConstraints(pattern=HTTP_URL, max_length=2048)] | None = Field(
        default=None, alias="baseURL"
    )
    """Override of the provider's API endpoint (a proxy, a regional endpoint, or a compatible
    self-hosted server)."""
    credentials: Credentials | None = None
    """API key of the provider, from a Secret. Required by the cloud providers."""
    options: ProviderOptions = Field(default_factory=dict)
    """Extra provider settings passed to its client; unknown ones are reported at start-up."""


class STTSpec(ProviderBase):
    """Speech-to-text: turns the caller's audio into text."""

    provider: Literal["deepgram", "whisper"]
    """``deepgram`` (streaming, cloud) or ``whisper`` (offline, bundled tiny.en weights,
    English only)."""
    language: Annotated[str, StringConstraints(pattern=LANGUAGE_TAG, max_length=35)] | None = None
    """Language of the caller's speech when it differs from the agent's ``language``."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.provider != 'deepgram' || has(self.credentials)",
            message="stt.credentials is required for provider deepgram",
            check=lambda s: s.provider != "deepgram" or s.credentials is not None,
            field_path=".credentials",
        ),
        Rule(
            cel="self.provider != 'whisper' || !has(self.model) || self.model == 'tiny.en'",
            message="whisper ships only the bundled 'tiny.en' model",
            check=lambda s: s.provider != "whisper" or s.model in (None, "tiny.en"),
            field_path=".model",
        ),
    )


LOCAL_LLM_MODEL = "smollm2-135m-instruct"
"""The one model the ``local`` LLM provider ships (inside the runtime image)."""


class LLMEndpoint(ProviderBase):
    """One language model endpoint."""

    provider: Literal["openai", "local"]
    """``openai``: the OpenAI API or any OpenAI-compatible server (vLLM, Ollama, LiteLLM)
    reached through ``baseURL``. ``local``: SmolLM2-135M-Instruct, bundled in the runtime image
    and run in the worker on CPU with no network at all — for air-gapped clusters, demos and
    tests; it does not call tools, and it needs knowledge bases and the grounding guard to
    answer facts reliably."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature; lower is more predictable."""
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    """Upper bound on the tokens of one reply. Spoken replies should stay short."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """How long to wait for the endpoint before it counts as failed (and a fallback takes over)."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.provider != 'openai' || has(self.credentials) || has(self.baseURL)",
            message="credentials is required for provider openai unless baseURL points at a "
            "self-hosted server",
            check=lambda s: (
                s.provider != "openai" or s.credentials is not None or s.base_url is not None
            ),
            field_path=".credentials",
        ),
        Rule(
            cel="self.provider != 'local' || (!has(self.baseURL) && !has(self.credentials))",
            message="provider local runs inside the worker: unset baseURL and credentials",
            check=lambda s: s.provider != "local" or (s.base_url is None and s.credentials is None),
            field_path=".provider",
        ),
        Rule(
            cel="self.provider != 'local' || !has(self.model)"
            f" || self.model == '{LOCAL_LLM_MODEL}'",
            message=f"provider local ships only '{LOCAL_LLM_MODEL}'",
            check=lambda s: s.provider != "local" or s.model in (None, LOCAL_LLM_MODEL),
            field_path=".model",
        ),
    )


class LLMSpec(LLMEndpoint):
    """The language model that writes the agent's replies, and its fallbacks."""

    fallbacks: list[LLMEndpoint] = Field(default_factory=list, max_length=4)
    """Endpoints tried in order when the primary errors or times out (an LLM router)."""

    rules: ClassVar[tuple[Rule, ...]] = (
        *LLMEndpoint.rules,
        Rule(
            cel=(
                "self.fallbacks.all(f, f.provider != self.provider"
                " || (has(f.model) ? f.model : '') != (has(self.model) ? self.model : '')"
                " || (has(f.baseURL) ? f.baseURL : '') != (has(self.baseURL) ? self.baseURL : ''))"
            ),
            message="each of llm.fallbacks must differ from the primary (model or baseURL)",
            check=lambda s: all(
                (f.provider, f.model, f.base_url) != (s.provider, s.model, s.base_url)
                for f in s.fallbacks
            ),
            field_path=".fallbacks",
        ),
    )


class TTSSpec(ProviderBase):
    """Text-to-speech: the agent's voice."""

    provider: Literal["cartesia", "piper"]
    """``cartesia`` (streaming, cloud; speaks spec.language) or ``piper`` (offline, bundled
    en_US voice, English agents only)."""
    voice: ShortString | None = None
    """Voice identifier of the provider. Defaults to the provider's default voice."""
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    """Speaking rate relative to normal."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.provider != 'cartesia' || has(self.credentials)",
            message="tts.credentials is required for provider cartesia",
            check=lambda s: s.provider != "cartesia" or s.credentials is not None,
            field_path=".credentials",
        ),
        Rule(
            cel="self.provider != 'piper' || !has(self.voice) || self.voice == 'en_US-joe-medium'",
            message="piper ships only the bundled 'en_US-joe-medium' voice",
            check=lambda s: s.provider != "piper" or s.voice in (None, "en_US-joe-medium"),
            field_path=".voice",
        ),
    )
