"""VoiceAgent: a real-time voice AI agent, run as LiveKit Agents worker pods."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, StringConstraints

from . import sizing
from .base import KubeModel, Rule
from .common import (
    AGENT_NAME_MAX,
    LANGUAGE_TAG,
    AgentName,
    PodOptions,
    ResourceName,
    ResourceRequirements,
    SecretKeySelector,
    ShortString,
    UniqueByName,
)
from .contract import API_VERSION, VOICE_AGENT_KIND
from .languages import TEXT_LANGUAGES, primary_language
from .phrases import PHRASES_RULE, Phrases
from .voiceagent_analysis import AnalysisSpec
from .voiceagent_events import CallEvents, call_event_secret_refs
from .voiceagent_providers import LOCAL_PROVIDERS, LLMEndpoint, LLMSpec, STTSpec, TTSSpec
from .voiceagent_recording import RecordingSpec
from .voiceagent_rollout import RolloutSpec
from .voiceagent_scaling import Scaling
from .voiceagent_sentiment import SentimentSpec
from .voiceagent_status import VoiceAgentStatus
from .voiceagent_telephony import Telephony, Tools
from .voiceagent_web import WebAccess

PersonalData = Literal["phoneNumbers", "emails", "cardNumbers", "names"]
"""Kinds of personal data the call record can mask (agent_runtime/redaction.py)."""

LIVEKIT_URL = r"^(wss?|https?)://[^\s/$.?#][^\s]*$"


def default_agent_name(namespace: str, name: str) -> str:
    """The LiveKit agent name of a VoiceAgent without spec.agentName: ``<namespace>.<name>``.

    A namespace has no dot, so this never names two VoiceAgents alike (``team-a/support`` is
    ``team-a.support``, ``team/a-support`` is ``team.a-support``). Past AGENT_NAME_MAX it is cut
    and ends in a hash of namespace/name instead, which keeps it unique and stable.
    """
    full = f"{namespace}.{name}"
    if len(full) <= AGENT_NAME_MAX:
        return full
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:10]
    return f"{full[: AGENT_NAME_MAX - 11].rstrip('-.')}-{digest}"


class LiveKitConnection(KubeModel):
    """The LiveKit server the agent's workers register with."""

    url: Annotated[str, StringConstraints(pattern=LIVEKIT_URL, max_length=2048)]
    """WebSocket (or HTTP) URL of the LiveKit server, e.g. ``wss://livekit.example.com``."""
    credentials_secret_ref: LiveKitCredentials
    """Secret holding the LiveKit API key and secret the workers authenticate with."""


class LiveKitCredentials(KubeModel):
    """A Secret with the LiveKit API key and API secret."""

    name: ResourceName
    """Name of the Secret, in the VoiceAgent's namespace."""
    api_key_key: ShortString = "apiKey"
    """Key of the Secret that holds the LiveKit API key."""
    api_secret_key: ShortString = "apiSecret"
    """Key of the Secret that holds the LiveKit API secret."""


class TurnDetection(KubeModel):
    """How the agent decides the caller has finished speaking."""

    mode: Literal["model", "vad", "stt"] = "model"
    """``model``: local end-of-turn model on top of voice activity (most natural; it reads the
    transcript as it streams, so it needs a streaming STT such as deepgram — with whisper it
    decides before the words exist and waits ``maxEndpointingDelaySeconds``); ``vad``: silence
    only (the right choice with whisper); ``stt``: the speech-to-text provider's end-of-speech
    events."""
    min_endpointing_delay_seconds: float = Field(default=0.5, ge=0, le=5)
    """Silence to wait at least before answering."""
    max_endpointing_delay_seconds: float = Field(default=3.0, ge=0.1, le=10)
    """Silence after which the agent answers even if the model expects more."""
    preemptive_generation: bool = True
    """Start the reply while the end of turn is still being confirmed (lower latency)."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.minEndpointingDelaySeconds <= self.maxEndpointingDelaySeconds",
            message="minEndpointingDelaySeconds must not exceed maxEndpointingDelaySeconds",
            check=lambda s: s.min_endpointing_delay_seconds <= s.max_endpointing_delay_seconds,
            field_path=".minEndpointingDelaySeconds",
        ),
    )


class Interruptions(KubeModel):
    """Barge-in: whether and when the caller may interrupt the agent."""

    enabled: bool = True
    """Let the caller interrupt the agent while it speaks."""
    min_duration_seconds: float = Field(default=0.5, ge=0, le=5)
    """Speech shorter than this does not interrupt (coughs, "mm-hm")."""
    min_words: int = Field(default=0, ge=0, le=20)
    """Words the caller must say before the agent stops (0: any speech)."""


class GroundingGuard(KubeModel):
    """Checks every answer against the knowledge retrieved for the turn, so the agent does not
    state facts its knowledge bases do not support. Applies only to agents with knowledge
    bases."""

    mode: Literal["auto", "enforce", "disabled"] = "auto"
    """``auto``: on for the ``local`` language model (a small model invents facts), off for the
    others; ``enforce``: on for every model; ``disabled``: off."""
    min_support: float = Field(default=0.85, ge=0, le=1)
    """Share of a sentence's key words (names, numbers, content words) that must appear together
    in one sentence of the retrieved passages for the sentence to be spoken; that passage
    sentence must also be negative if the answer is ("there is no parking")."""
    fallback: Literal["quote", "refuse"] = "quote"
    """What replaces an unsupported answer: ``quote`` the passage sentence that best matches
    the caller's question (when none does, the refusal), or ``refuse`` with
    ``phrases.guardRefusal``."""


class KnowledgeBaseRef(KubeModel):
    """A KnowledgeBase whose content grounds the agent's answers."""

    name: ResourceName
    """Name of the KnowledgeBase, in the VoiceAgent's namespace."""
    top_k: int = Field(default=4, ge=1, le=20)
    """Chunks retrieved for each caller turn."""
    min_score: float = Field(default=0.0, ge=0, le=1)
    """Chunks scoring below this are not given to the model."""


class VoiceAgentSpec(KubeModel):
    """The desired state of a VoiceAgent."""

    agent_name: AgentName | None = None
    """Name the workers register under in LiveKit (explicit dispatch); callers and SIP dispatch
    rules ask for it. Default: ``<namespace>.<metadata.name>``, unique across namespaces (a
    namespace has no dot); past 63 characters it is cut and ends in ``-`` and 10 hex digits of
    the SHA-256 of ``<namespace>/<name>``. status.agentName shows the name in use. An explicit
    name another VoiceAgent on the same LiveKit server also claims is reported on both
    (Degraded, reason ``AgentNameConflict``): calls to it would be shared."""
    instructions: Annotated[str, StringConstraints(min_length=1, max_length=32768)]
    """The persona and rules of the agent: the system prompt of the language model."""
    greeting: Annotated[str, StringConstraints(max_length=2048)] | None = None
    """What the agent says when a call starts. Omit to let the caller speak first."""
    language: Annotated[str, StringConstraints(pattern=LANGUAGE_TAG, max_length=35)] = "en"
    """Language of the conversation (BCP 47, e.g. ``en``, ``fr-FR``). It also chooses the
    built-in ``phrases``."""
    phrases: Phrases = Field(default_factory=Phrases)
    """What the agent says by itself (apology, goodbyes, silence prompt, transfer notice,
    grounding guard's refusal). Each phrase left out is the built-in one of ``language``'s
    primary subtag (built in: ar, de, en, es, fr; ``fr-CA`` uses ``fr``); a language without
    built-in phrases must set every one."""
    livekit: LiveKitConnection
    """The LiveKit server and its credentials."""
    stt: STTSpec
    """Speech-to-text provider."""
    llm: LLMSpec
    """Language model provider, with its fallbacks."""
    tts: TTSSpec
    """Text-to-speech provider."""
    turn_detection: TurnDetection = Field(default_factory=TurnDetection)
    """End-of-turn detection."""
    interruptions: Interruptions = Field(default_factory=Interruptions)
    """Barge-in settings."""
    knowledge_bases: UniqueByName[KnowledgeBaseRef] = Field(default_factory=list, max_length=8)
    """KnowledgeBases that ground the agent's answers; the agent is Ready only when all are."""
    grounding_guard: GroundingGuard = Field(default_factory=GroundingGuard)
    """Replaces answers the knowledge bases do not support."""
    telephony: Telephony | None = None
    """Phone access to the agent."""
    web: WebAccess | None = None
    """Browser access to the agent: a call page and the endpoint that starts calls."""
    tools: Tools = Field(default_factory=Tools)
    """Actions the agent may take during a call."""
    scaling: Scaling = Field(default_factory=Scaling)
    """Worker pod count and per-pod call capacity."""
    drain_timeout_seconds: int = Field(default=3600, ge=0, le=86400)
    """On shutdown (rollout, scale-down, node drain) a worker takes no new calls and waits this
    long for live calls to end. The pods' termination grace period is derived from it."""
    max_call_duration_seconds: int = Field(default=3600, ge=30, le=86400)
    """Calls are ended politely after this long. The goodbye gets a few seconds: if the voice
    fails or hangs, the call ends without it."""
    silence_timeout_seconds: int = Field(default=30, ge=5, le=3600)
    """When the caller says nothing for this long after the agent has finished speaking, the
    agent asks once whether they are still there; after as long again without a word it says
    goodbye and ends the call. A worker also leaves a call's room that no caller has joined
    after this long."""
    max_history_turns: int = Field(default=40, ge=1, le=1000)
    """Caller turns (a question and everything the agent said and did in reply) the language
    model is shown; older turns are left out of its prompt. The instructions and the greeting
    always stay."""
    max_history_tokens: int | None = Field(default=None, ge=256, le=2000000)
    """Bound on the prompt's estimated size in tokens (about four characters each),
    instructions included: the oldest turns are left out until it fits (the caller's current
    turn always stays). Unset: what fits the smallest context window of the agent's models —
    for provider ``local``, its 2,048-token slot less the reply and the knowledge excerpts;
    the ``openai`` provider is bounded by ``maxHistoryTurns`` only."""
    log_transcripts: bool = False
    """Include the conversation's text, and a phone caller's number, in the call-end log record
    (both are personal data; see ``redact``)."""
    redact: list[PersonalData] = Field(
        default_factory=lambda: list(get_args(PersonalData)),
        max_length=len(get_args(PersonalData)),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    """Personal data masked in the call record before it leaves the worker; by default all of it.
    Phone numbers (``[phone]``; a phone caller's number keeps its last 4 digits), email
    addresses (``[email]``), payment card numbers (``[card]``, those that pass the Luhn check):
    written digits and addresses only, a number spelled out in words is not recognised. People's
    names (``[name]``): only the one to three words that follow an introduction ("my name is",
    "this is", "I'm", "je m'appelle", "me llamo", "ich heiße", "اسمي") or a title ("Mr.",
    "Mme", "Frau", "السيد"), in English, French, Spanish, German and Arabic whatever
    ``language``; capitalised words only, except in Arabic. A name said alone, or written all in
    lowercase, is not recognised. Empty: nothing is masked."""
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements, description=sizing.describe()
    )
    image: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    """Worker image; defaults to the operator's runtime image of the same version."""
    pod: PodOptions = Field(default_factory=PodOptions)
    """Scheduling and metadata of the worker pods."""
    revision_history_limit: int = Field(default=10, ge=1, le=50)
    """Configurations kept in ``status.revisions`` (newest first), each with its tests' result."""
    call_events: CallEvents | None = None
    """CloudEvents about each call (started, ended with its record, transferred), delivered at
    least once to webhooks or Redis Streams through a durable outbox."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    """How a new configuration reaches the callers: all at once, pod by pod, or as a canary."""
    analysis: AnalysisSpec | None = None
    """The analysis of each call once it has ended (a summary, declared data fields, a verdict
    against a rubric) by a language model, delivered as the ``call.analyzed`` event: it needs
    ``callEvents`` with that type. The transcript reaches the analysis through the outbox even
    when ``logTranscripts`` is off (then no sink gets it)."""
    sentiment: SentimentSpec | None = None
    """Score how each caller feels, turn by turn (English only); unset: not scored."""
    recording: RecordingSpec | None = None
    """Record calls, both sides, with the caller's consent, to S3-compatible storage; unset:
    no call is recorded."""

    rules: ClassVar[tuple[Rule, ...]] = (
        PHRASES_RULE,
        Rule(
            cel="self.stt.provider != 'whisper' || self.language.startsWith('en')"
            " || (has(self.stt.language) && self.stt.language.startsWith('en'))",
            message="stt.provider whisper understands English only: set language to en",
            check=lambda s: (
                s.stt.provider != "whisper"
                or s.language.startswith("en")
                or (s.stt.language or "").startswith("en")
            ),
            field_path=".stt.provider",
        ),
        Rule(
            cel="self.tts.provider != 'piper' || self.language.startsWith('en')",
            message="tts.provider piper has an English voice only: set language to en, or use"
            " cartesia",
            check=lambda s: s.tts.provider != "piper" or s.language.startswith("en"),
            field_path=".tts.provider",
        ),
        Rule(
            cel="!has(self.analysis) || (has(self.callEvents)"
            " && self.callEvents.types.exists(t, t == 'call.analyzed'))",
            message="analysis needs callEvents with type call.analyzed: the analysis of a call"
            " is delivered as that event",
            check=lambda s: (
                s.analysis is None
                or (s.call_events is not None and "call.analyzed" in s.call_events.types)
            ),
            field_path=".analysis",
        ),
        Rule(
            cel="!has(self.analysis) || has(self.analysis.llm) || self.llm.provider != 'local'",
            message="analysis: the agent's llm is provider local (135M parameters), which cannot"
            " analyse calls: set analysis.llm",
            check=lambda s: (
                s.analysis is None or s.analysis.llm is not None or s.llm.provider != "local"
            ),
            field_path=".analysis.llm",
        ),
        Rule(
            cel="!has(self.sentiment) || self.language.startsWith('en')",
            message="sentiment reads English only: set language to en, or leave sentiment out",
            check=lambda s: s.sentiment is None or s.language.startswith("en"),
            field_path=".sentiment",
        ),
        Rule(
            cel="!has(self.recording) || self.recording.consent == 'notice'"
            " || self.language.matches('^(?i)(en|fr|es|de|ar)(-.*)?$')",
            message="recording.consent required understands a yes in en, fr, es, de and ar only:"
            " use consent notice for this language",
            check=lambda s: (
                s.recording is None
                or s.recording.consent == "notice"
                or primary_language(s.language) in TEXT_LANGUAGES
            ),
            field_path=".recording.consent",
        ),
        Rule(
            cel="!has(self.tools.transfer) || has(self.telephony)",
            message="tools.transfer needs telephony: only phone callers can be transferred",
            check=lambda s: s.tools.transfer is None or s.telephony is not None,
            field_path=".tools.transfer",
        ),
    )

    @property
    def local_models(self) -> bool:
        """A provider runs its model in the worker pods (whisper, local, piper)."""
        return any(p.provider in LOCAL_PROVIDERS for p in (self.stt, self.llm, self.tts))

    def pod_size(self) -> sizing.PodSize:
        """The resources that hold scaling.maxCallsPerPod calls (sizing.py)."""
        return sizing.pod_size(
            self.local_models, self.scaling.executor, self.scaling.max_calls_per_pod
        )

    @property
    def analysis_llm(self) -> LLMEndpoint | None:
        """The model of ``analysis`` when it names its own (with its own key and host); None
        when it uses the agent's ``llm``, or there is no analysis."""
        return self.analysis.llm if self.analysis is not None else None


class VoiceAgent(KubeModel):
    """A real-time voice AI agent: LiveKit Agents workers that answer browser and phone callers
    with a streaming speech-to-text, language model, text-to-speech loop."""

    model_config = KubeModel.model_config | {"extra": "ignore"}

    # A Literal type needs the literal; the default is the contract's constant (a test checks
    # they agree).
    api_version: Literal["kubevox.dev/v1alpha1"] = API_VERSION
    kind: Literal["VoiceAgent"] = VOICE_AGENT_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: VoiceAgentSpec
    status: VoiceAgentStatus | None = None

    @property
    def effective_agent_name(self) -> str:
        """The LiveKit agent name: spec.agentName, else default_agent_name()."""
        return self.spec.agent_name or default_agent_name(
            str(self.metadata.get("namespace") or "default"), str(self.metadata.get("name", ""))
        )


# Forward references between classes of this module.
LiveKitConnection.model_rebuild()


def secret_refs(spec: VoiceAgentSpec) -> list[SecretKeySelector]:
    """Every Secret key the VoiceAgent's pods need (the operator checks they exist)."""
    refs = [
        SecretKeySelector(name=spec.livekit.credentials_secret_ref.name, key=k)
        for k in (
            spec.livekit.credentials_secret_ref.api_key_key,
            spec.livekit.credentials_secret_ref.api_secret_key,
        )
    ]
    for provider in (spec.stt, spec.llm, *spec.llm.fallbacks, spec.tts):
        if provider.credentials is not None:
            refs.append(provider.credentials.secret_key_ref)
    if spec.web is not None and spec.web.auth.shared_key_secret_ref is not None:
        refs.append(spec.web.auth.shared_key_secret_ref)
    if spec.call_events is not None:
        refs += call_event_secret_refs(spec.call_events)
    if spec.analysis_llm is not None and spec.analysis_llm.credentials is not None:
        refs.append(spec.analysis_llm.credentials.secret_key_ref)
    if spec.recording is not None:
        refs += [spec.recording.storage.access_key_ref, spec.recording.storage.secret_key_ref]
    return refs
