"""The operator process's settings, as its command line and environment give them."""

from __future__ import annotations

from dataclasses import dataclass, field

from .builders import OperatorDefaults
from .builders.network import EgressSettings
from .egress import Network
from .policy import AgentPolicy


@dataclass
class Settings:
    defaults: OperatorDefaults
    workers: int = 16
    resync_seconds: float = 300.0
    retry_max_seconds: float = 60.0
    sip_poll_seconds: float = 60.0
    """LiveKit has no watch: agents with telephony are compared with it this often."""
    waiting_poll_seconds: float = 1.0
    """How often LiveKit is asked for calls waiting for a worker (see waiting.py)."""
    rollout_settle_seconds: float = 75.0
    """Time a canary's new split takes to reach every pod (ConfigMap volumes follow a kubelet
    sync, 1 min by default): a share changes on one side, then this later on the other."""
    agent_policy: AgentPolicy = field(default_factory=AgentPolicy)
    """What VoiceAgent authors may choose (images, ServiceAccounts)."""
    egress: EgressSettings | None = None
    """The default-deny egress NetworkPolicies' settings; None: the operator makes none."""
    livekit_allowed: tuple[Network, ...] = ()
    """Internal addresses the operator may still contact as a spec.livekit.url (egress.py)."""
    namespaces: tuple[str, ...] = ()
    """The namespaces watched (globs allowed); empty: all."""
    sip_cleanup_timeout_seconds: float = 600.0
    """How long a deleted VoiceAgent waits for LiveKit to remove its SIP objects before its
    finalizer is released anyway (with an Event naming what may be left)."""
