"""The kubevox API, group ``kubevox.dev`` version ``v1alpha1``: the single source of truth.

These pydantic models generate the CRD schemas (``make crds``: ``python -m kubevox_api.crd``),
drive the operator's builders and parse the runtime's configuration; :mod:`kubevox_api.contract`
names what the operator and the runtime agree on. Both depend on this package; it depends on
pydantic alone and imports nothing from either.
"""

from .base import KubeModel, Rule, RuleViolation
from .common import Condition, ConfigMapKeySelector, Credentials, SecretKeySelector
from .contract import API_VERSION, CONFIG_ENV, CONFIG_FILE, GROUP, VERSION
from .knowledgebase import KnowledgeBase, KnowledgeBaseSpec, KnowledgeBaseStatus, Source
from .phrases import BUILT_IN_PHRASES, Phrases, ResolvedPhrases, phrases_for
from .runtime_config import (
    PROVIDER_ENV,
    AgentRuntimeConfig,
    ResolvedKnowledgeBase,
    credential_env,
    knowledge_base_redis_env,
    render_runtime_config,
)
from .voiceagent import (
    VoiceAgent,
    VoiceAgentSpec,
    default_agent_name,
    secret_refs,
)
from .voiceagent_providers import LLMEndpoint, LLMSpec, STTSpec, TTSSpec
from .voiceagent_scaling import Scaling
from .voiceagent_status import VoiceAgentStatus

__all__ = [
    "API_VERSION",
    "BUILT_IN_PHRASES",
    "CONFIG_ENV",
    "CONFIG_FILE",
    "GROUP",
    "PROVIDER_ENV",
    "VERSION",
    "AgentRuntimeConfig",
    "Condition",
    "ConfigMapKeySelector",
    "Credentials",
    "KnowledgeBase",
    "KnowledgeBaseSpec",
    "KnowledgeBaseStatus",
    "KubeModel",
    "LLMEndpoint",
    "LLMSpec",
    "Phrases",
    "ResolvedKnowledgeBase",
    "ResolvedPhrases",
    "Rule",
    "RuleViolation",
    "STTSpec",
    "Scaling",
    "SecretKeySelector",
    "Source",
    "TTSSpec",
    "VoiceAgent",
    "VoiceAgentSpec",
    "VoiceAgentStatus",
    "credential_env",
    "default_agent_name",
    "knowledge_base_redis_env",
    "phrases_for",
    "render_runtime_config",
    "secret_refs",
]
