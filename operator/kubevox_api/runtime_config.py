"""The configuration the operator renders for the runtime, and how credentials reach it.

The operator writes an :class:`AgentRuntimeConfig` into the agent's ConfigMap; the runtime parses
it with this same model. It never contains a secret: credentials reach the pod as environment
variables filled from Secret references, under the names :func:`credential_env` gives.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel
from .common import AgentName, DispatchName, ShortString
from .knowledgebase import Embedding, KnowledgeBase
from .voiceagent import KnowledgeBaseRef, VoiceAgent, VoiceAgentSpec

LIVEKIT_URL_ENV = "LIVEKIT_URL"
LIVEKIT_API_KEY_ENV = "LIVEKIT_API_KEY"
LIVEKIT_API_SECRET_ENV = "LIVEKIT_API_SECRET"

CredentialRole = Literal["stt", "llm", "tts", "embedding", "judge", "analysis"]

PROVIDER_ENV: dict[str, str] = {
    "deepgram": "DEEPGRAM_API_KEY",
    "openai": "OPENAI_API_KEY",
    "cartesia": "CARTESIA_API_KEY",
}
"""The variable each provider's own SDK reads; used when no kubevox variable is set (e.g. in
``kubevox-agent chat`` on a laptop)."""


def credential_env(role: CredentialRole, fallback_index: int = 0) -> str:
    """Environment variable holding the API key of one provider of the agent.

    ``fallback_index`` 0 is the primary; 1, 2, … are ``llm.fallbacks`` in order.
    """
    suffix = f"_FALLBACK_{fallback_index}" if fallback_index else ""
    return f"KUBEVOX_{role.upper()}{suffix}_API_KEY"


def knowledge_base_redis_env(index: int) -> str:
    """Environment variable with the Redis URL of the agent's ``index``-th knowledge base."""
    return f"KUBEVOX_KB_{index}_REDIS_URL"


class ResolvedKnowledgeBase(KubeModel):
    """A knowledge base as the runtime queries it."""

    name: ShortString
    """Name of the KnowledgeBase object."""
    index_name: Annotated[str, StringConstraints(max_length=128)]
    """The Redis search alias to query."""
    top_k: int = Field(ge=1, le=20)
    """Chunks retrieved per turn."""
    min_score: float = Field(ge=0, le=1)
    """Chunks scoring below this are dropped."""
    embedding: Embedding
    """The embedding model the index was built with; queries must use the same."""
    redis_url_env: ShortString
    """Environment variable that holds the Redis URL."""
    embedding_api_key_env: ShortString | None = None
    """Environment variable that holds the embeddings API key, when the provider needs one."""


class AgentRuntimeConfig(KubeModel):
    """Everything a worker needs to serve calls for one VoiceAgent, minus the secrets."""

    name: AgentName
    """Name of the VoiceAgent."""
    namespace: ShortString
    """Namespace of the VoiceAgent."""
    agent_name: DispatchName
    """Name the worker registers under in LiveKit."""
    spec: VoiceAgentSpec
    """The VoiceAgent's spec."""
    knowledge_bases: list[ResolvedKnowledgeBase] = Field(default_factory=list, max_length=8)
    """The knowledge bases to retrieve from, resolved by the operator."""


def render_runtime_config(
    agent: VoiceAgent, knowledge_bases: dict[str, KnowledgeBase]
) -> AgentRuntimeConfig:
    """Render the runtime config of ``agent``; ``knowledge_bases`` maps each referenced name to
    its object (the caller reports missing ones before rendering)."""
    resolved = []
    for i, ref in enumerate(agent.spec.knowledge_bases):
        kb = knowledge_bases[ref.name]
        resolved.append(_resolve_knowledge_base(ref, kb, i))
    return AgentRuntimeConfig(
        name=str(agent.metadata.get("name", "")),
        namespace=str(agent.metadata.get("namespace", "default")),
        agent_name=agent.effective_agent_name,
        spec=agent.spec,
        knowledge_bases=resolved,
    )


def _resolve_knowledge_base(
    ref: KnowledgeBaseRef, kb: KnowledgeBase, i: int
) -> ResolvedKnowledgeBase:
    return ResolvedKnowledgeBase(
        name=ref.name,
        index_name=kb.index_name,
        top_k=ref.top_k,
        min_score=ref.min_score,
        embedding=kb.spec.embedding,
        redis_url_env=knowledge_base_redis_env(i),
        embedding_api_key_env=(
            f"KUBEVOX_KB_{i}_EMBEDDING_API_KEY" if kb.spec.embedding.credentials else None
        ),
    )


def stable_hash(value: Any, length: int = 16) -> str:
    """Hash of a JSON-able value, independent of key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


NOT_IN_CONFIG_HASH = (
    "scaling",
    "resources",
    "pod",
    "image",
    "web",
    "revisionHistoryLimit",
    "rollout",
)
"""Spec fields the worker process does not read: changing them rolls no worker."""


def config_hash(config: AgentRuntimeConfig) -> str:
    """Hash of what the worker process reads (the operator's ``status.configHash``, and each
    call record's); scaling-only changes leave it alone."""
    data = config.to_k8s()
    spec = dict(data["spec"])
    scaling = spec.get("scaling", {})
    for key in NOT_IN_CONFIG_HASH:
        spec.pop(key, None)
    spec["maxCallsPerPod"] = scaling.get("maxCallsPerPod")  # the worker's load limit
    if scaling.get("executor", "process") != "process":  # how it runs its calls
        spec["executor"] = scaling["executor"]
    return stable_hash({**data, "spec": spec})
