"""Pure functions: API objects in, the Kubernetes objects the operator applies out. No I/O."""

from kubevox_api.runtime_config import config_hash

from .agent import AgentChildren, OperatorDefaults, build_agent_children
from .knowledge import IngestPlan, build_ingest_plan, content_hash

__all__ = [
    "AgentChildren",
    "IngestPlan",
    "OperatorDefaults",
    "build_agent_children",
    "build_ingest_plan",
    "config_hash",
    "content_hash",
]
