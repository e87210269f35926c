"""The kubevox API, group ``kubevox.dev`` version ``v1alpha1``: the single source of truth.

These pydantic models generate the CRD schemas (``make crds``), drive the operator's builders and
parse the runtime's configuration.
"""

from .base import KubeModel, Rule, RuleViolation
from .common import Condition, ConfigMapKeySelector, Credentials, SecretKeySelector
from .knowledgebase import KnowledgeBase, KnowledgeBaseSpec, KnowledgeBaseStatus, Source
from .runtime_config import (
    CONFIG_ENV,
    CONFIG_FILE,
    PROVIDER_ENV,
    AgentRuntimeConfig,
    ResolvedKnowledgeBase,
    credential_env,
    knowledge_base_redis_env,
    render_runtime_config,
)
from .voiceagent import (
    LLMEndpoint,
    LLMSpec,
    Scaling,
    STTSpec,
    TTSSpec,
    VoiceAgent,
    VoiceAgentSpec,
    VoiceAgentStatus,
    default_agent_name,
    secret_refs,
)

GROUP = "kubevox.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

__all__ = [
    "API_VERSION",
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
    "ResolvedKnowledgeBase",
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
    "render_runtime_config",
    "secret_refs",
]
