"""Valid base objects and a table of invalid variants, shared by the model tests (pydantic) and
the admission tests (the real API server): both must reject every case and name the field."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

VOICE_AGENT = yaml.safe_load(
    """
apiVersion: kubevox.dev/v1alpha1
kind: VoiceAgent
metadata: {name: case}
spec:
  instructions: You are a helpful clinic receptionist.
  livekit:
    url: ws://livekit.example:7880
    credentialsSecretRef: {name: livekit}
  stt: {provider: whisper}
  llm: {provider: openai, model: m, baseURL: "http://llm.example:8000/v1"}
  tts: {provider: piper}
"""
)

CLOUD_SPEECH: dict[str, Any] = {
    "stt": {"provider": "deepgram", "credentials": {"secretKeyRef": {"name": "k", "key": "dg"}}},
    "tts": {"provider": "cartesia", "credentials": {"secretKeyRef": {"name": "k", "key": "ca"}}},
}
"""Speech for an agent in another language than English: the offline voices speak English only."""

KNOWLEDGE_BASE = yaml.safe_load(
    """
apiVersion: kubevox.dev/v1alpha1
kind: KnowledgeBase
metadata: {name: case}
spec:
  sources:
    - name: hours
      inline: The clinic opens at 8 am.
  store:
    redisUrlSecretRef: {name: redis, key: url}
"""
)

_DELETE = object()


@dataclass(frozen=True)
class BadCase:
    id: str
    base: dict[str, Any]
    changes: dict[str, Any]
    """Dotted paths (list indexes as numbers) to new values; ``_DELETE`` removes the key."""
    field: str
    """The field path the API server's message must name."""

    def manifest(self, name: str) -> dict[str, Any]:
        obj = copy.deepcopy(self.base)
        obj["metadata"]["name"] = name
        for path, value in self.changes.items():
            *parents, leaf = path.split(".")
            node: Any = obj
            for part in parents:
                node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
            if value is _DELETE:
                del node[leaf]
            elif leaf.isdigit():
                node[int(leaf)] = value
            else:
                node[leaf] = value
        return obj


def va(id: str, field: str, **changes: Any) -> BadCase:
    return BadCase(id, VOICE_AGENT, {k.replace("__", "."): v for k, v in changes.items()}, field)


def kb(id: str, field: str, **changes: Any) -> BadCase:
    return BadCase(id, KNOWLEDGE_BASE, {k.replace("__", "."): v for k, v in changes.items()}, field)


SIP_OPEN = {"phoneNumbers": ["+15550100100"]}

BAD_CASES = [
    va("missing-instructions", "spec.instructions", spec__instructions=_DELETE),
    va("empty-instructions", "spec.instructions", spec__instructions=""),
    va("missing-livekit", "spec.livekit", spec__livekit=_DELETE),
    va("livekit-url-scheme", "spec.livekit.url", spec__livekit__url="ftp://livekit.example"),
    va("unknown-stt-provider", "spec.stt.provider", spec__stt__provider="google"),
    va("missing-tts-provider", "spec.tts.provider", spec__tts={}),
    va("negative-min-replicas", "spec.scaling.minReplicas", spec__scaling={"minReplicas": -1}),
    va("zero-max-replicas", "spec.scaling.maxReplicas", spec__scaling={"maxReplicas": 0}),
    va("unknown-autoscaler", "spec.scaling.autoscaler", spec__scaling={"autoscaler": "knative"}),
    va(
        "min-above-max",
        "spec.scaling.minReplicas",
        spec__scaling={"minReplicas": 5, "maxReplicas": 2},
    ),
    va(
        "target-above-capacity",
        "spec.scaling.targetCallsPerPod",
        spec__scaling={"targetCallsPerPod": 10, "maxCallsPerPod": 4},
    ),
    va("agent-name-not-dns", "spec.agentName", spec__agentName="Front_Desk"),
    va("unknown-field", "spec.persona", spec__persona="cheerful"),
    va(
        "deepgram-without-key",
        "spec.stt.credentials",
        spec__stt={"provider": "deepgram", "model": "nova-3"},
    ),
    va(
        "whisper-in-french", "spec.stt.provider", spec__language="fr", spec__tts=CLOUD_SPEECH["tts"]
    ),
    va("piper-in-french", "spec.tts.provider", spec__language="fr", spec__stt=CLOUD_SPEECH["stt"]),
    # Italian has no built-in phrases: the agent would apologise and say goodbye in English.
    va(
        "language-without-phrases",
        "spec.phrases",
        spec__language="it-IT",
        spec__stt=CLOUD_SPEECH["stt"],
        spec__tts=CLOUD_SPEECH["tts"],
    ),
    va(
        "language-with-some-phrases",
        "spec.phrases",
        spec__language="it",
        spec__stt=CLOUD_SPEECH["stt"],
        spec__tts=CLOUD_SPEECH["tts"],
        spec__phrases={"apology": "Mi scusi, non riesco a rispondere. Può riprovare?"},
    ),
    va("empty-phrase", "spec.phrases.silencePrompt", spec__phrases={"silencePrompt": ""}),
    va("unknown-phrase", "spec.phrases.hello", spec__phrases={"hello": "Hi!"}),
    va(
        "whisper-other-model",
        "spec.stt.model",
        spec__stt={"provider": "whisper", "model": "large-v3"},
    ),
    va(
        "fallback-same-as-primary",
        "spec.llm.fallbacks",
        spec__llm__fallbacks=[
            {"provider": "openai", "model": "m", "baseURL": "http://llm.example:8000/v1"}
        ],
    ),
    va(
        "openai-without-key-or-url",
        "spec.llm.credentials",
        spec__llm={"provider": "openai", "model": "gpt-4.1-mini"},
    ),
    va(
        "fallback-wrong-family",
        "spec.llm.fallbacks[0].provider",
        spec__llm__fallbacks=[{"provider": "cartesia", "baseURL": "http://other:8000/v1"}],
    ),
    va(
        "local-llm-with-base-url",
        "spec.llm.provider",
        spec__llm={"provider": "local", "baseURL": "http://llm.example:8000/v1"},
    ),
    va(
        "local-llm-other-model",
        "spec.llm.model",
        spec__llm={"provider": "local", "model": "llama-70b"},
    ),
    va(
        "guard-support-above-one",
        "spec.groundingGuard.minSupport",
        spec__groundingGuard={"minSupport": 1.5},
    ),
    va("drain-too-long", "spec.drainTimeoutSeconds", spec__drainTimeoutSeconds=100000),
    va(
        "endpointing-min-above-max",
        "spec.turnDetection.minEndpointingDelaySeconds",
        spec__turnDetection={"minEndpointingDelaySeconds": 4, "maxEndpointingDelaySeconds": 1},
    ),
    va("open-sip-trunk", "spec.telephony.sip.allowedAddresses", spec__telephony={"sip": SIP_OPEN}),
    *(
        va(
            f"sip-allows-{cidr.replace('/', '-').replace(':', '_')}",
            "spec.telephony.sip.allowedAddresses",
            spec__telephony={"sip": {**SIP_OPEN, "allowedAddresses": ["203.0.113.7", cidr]}},
        )
        for cidr in ("0.0.0.0/0", "::/0", "10.0.0.0/7", "2001:db8::/16")
    ),
    va(
        "sip-number-not-e164",
        "spec.telephony.sip.phoneNumbers[0]",
        spec__telephony={
            "sip": {"phoneNumbers": ["555-0100"], "allowedAddresses": ["203.0.113.7"]}
        },
    ),
    va(
        "duplicate-knowledge-base",
        "spec.knowledgeBases",
        spec__knowledgeBases=[{"name": "faq"}, {"name": "faq"}],
    ),
    va(
        "top-k-zero",
        "spec.knowledgeBases[0].topK",
        spec__knowledgeBases=[{"name": "faq", "topK": 0}],
    ),
    va(
        "canary-steps-not-increasing",
        "spec.rollout.canary.steps",
        spec__rollout={
            "strategy": "Canary",
            "canary": {"steps": [{"weight": 50}, {"weight": 20}]},
        },
    ),
    va(
        "canary-without-its-strategy",
        "spec.rollout.canary",
        spec__rollout={"canary": {"steps": [{"weight": 10}]}},
    ),
    va(
        "canary-weight-zero",
        "spec.rollout.canary.steps[0].weight",
        spec__rollout={"strategy": "Canary", "canary": {"steps": [{"weight": 0}]}},
    ),
    va(
        "canary-error-rate-above-one",
        "spec.rollout.canary.analysis.maxErrorRate",
        spec__rollout={
            "strategy": "Canary",
            "canary": {"steps": [{"weight": 10}], "analysis": {"maxErrorRate": 2}},
        },
    ),
    va(
        "call-event-sink-with-both-kinds",
        "spec.callEvents.sinks[0]",
        spec__callEvents={
            "outbox": {"redisUrlSecretRef": {"name": "redis", "key": "url"}},
            "sinks": [
                {
                    "name": "crm",
                    "webhook": {
                        "url": "https://crm.example/hooks",
                        "signingSecretRef": {"name": "crm", "key": "hmac"},
                    },
                    "redisStream": {"redisUrlSecretRef": {"name": "redis", "key": "url"}},
                }
            ],
        },
    ),
    va(
        "call-event-sinks-with-one-name",
        "spec.callEvents.sinks",
        spec__callEvents={
            "outbox": {"redisUrlSecretRef": {"name": "redis", "key": "url"}},
            "sinks": [
                {"name": "bus", "redisStream": {"redisUrlSecretRef": {"name": "r", "key": "u"}}},
                {"name": "bus", "redisStream": {"redisUrlSecretRef": {"name": "r", "key": "v"}}},
            ],
        },
    ),
    va(
        "call-event-webhook-not-http",
        "spec.callEvents.sinks[0].webhook.url",
        spec__callEvents={
            "outbox": {"redisUrlSecretRef": {"name": "redis", "key": "url"}},
            "sinks": [
                {
                    "name": "crm",
                    "webhook": {
                        "url": "ftp://crm.example/hooks",
                        "signingSecretRef": {"name": "crm", "key": "hmac"},
                    },
                }
            ],
        },
    ),
    va(
        "transfer-without-telephony",
        "spec.tools.transfer",
        spec__tools={"transfer": {"to": "tel:+15550100199"}},
    ),
    va(
        "cpu-not-a-quantity",
        "spec.resources.requests.cpu",
        spec__resources={"requests": {"cpu": "lots"}},
    ),
    va(
        "piper-unknown-voice",
        "spec.tts.voice",
        spec__tts={"provider": "piper", "voice": "en_GB-alan"},
    ),
    va(
        "toleration-bad-operator",
        "spec.pod.tolerations[0].operator",
        spec__pod={"tolerations": [{"key": "k", "operator": "Matches"}]},
    ),
    kb("missing-sources", "spec.sources", spec__sources=_DELETE),
    kb("empty-sources", "spec.sources", spec__sources=[]),
    kb(
        "two-kinds-in-one-source",
        "spec.sources[0]",
        spec__sources=[{"name": "s", "inline": "text", "url": "https://docs.example/faq.html"}],
    ),
    kb("no-kind-in-source", "spec.sources[0]", spec__sources=[{"name": "s", "title": "Nothing"}]),
    kb(
        "file-url",
        "spec.sources[0].url",
        spec__sources=[{"name": "s", "url": "file:///etc/passwd"}],
    ),
    kb(
        "overlap-not-below-size",
        "spec.chunking.overlapTokens",
        spec__chunking={"sizeTokens": 64, "overlapTokens": 64},
    ),
    kb(
        "unknown-embedding-provider",
        "spec.embedding.provider",
        spec__embedding={"provider": "cohere"},
    ),
    kb(
        "openai-embedding-without-key",
        "spec.embedding.credentials",
        spec__embedding={"provider": "openai"},
    ),
    kb(
        "local-embedding-unknown-model",
        "spec.embedding.model",
        spec__embedding={"provider": "local", "model": "bge-small-en-v1.5"},
    ),
    kb(
        "local-embedding-with-dimensions",
        "spec.embedding.dimensions",
        spec__embedding={"provider": "local", "model": "all-MiniLM-L6-v2", "dimensions": 128},
    ),
    kb("missing-store", "spec.store", spec__store=_DELETE),
    kb("refresh-interval-not-duration", "spec.refreshInterval", spec__refreshInterval="tomorrow"),
    kb("refresh-interval-under-a-minute", "spec.refreshInterval", spec__refreshInterval="30s"),
    kb("refresh-interval-59.5s", "spec.refreshInterval", spec__refreshInterval="59.5s"),
    kb("refresh-interval-zero", "spec.refreshInterval", spec__refreshInterval="0m"),
    kb(
        "configmap-name-not-dns",
        "spec.sources[0].configMap.name",
        spec__sources=[{"name": "s", "configMap": {"name": "Support FAQ"}}],
    ),
    kb(
        "duplicate-source-names",
        "spec.sources",
        spec__sources=[{"name": "a", "inline": "x"}, {"name": "a", "inline": "y"}],
    ),
    kb("source-without-name", "spec.sources[0].name", spec__sources=[{"inline": "x"}]),
    kb(
        "unknown-format",
        "spec.sources[0].format",
        spec__sources=[{"name": "s", "inline": "x", "format": "docx"}],
    ),
    # Italian has no stemmer and stop words in kubevox (kubevox_api.languages).
    kb("unknown-language", "spec.language", spec__language="it"),
    kb("language-as-a-tag", "spec.language", spec__language="fr-FR"),
    kb(
        "unknown-source-language",
        "spec.sources[0].language",
        spec__sources=[{"name": "s", "inline": "x", "language": "klingon"}],
    ),
]
