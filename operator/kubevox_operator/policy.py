"""What the operator's administrator lets VoiceAgent authors choose (docs/security/privilege.md).

Whoever may create a VoiceAgent picks its worker image and ServiceAccount: an image runs with
the agent's Secrets, a ServiceAccount carries whatever RBAC it was given. The operator's
configuration restricts both; an agent that breaks a restriction gets no children written (its
Deployment stays as it was) and reports Degraded with the reason. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubevox_api import VoiceAgent

from .status import Problem

IMAGE_NOT_ALLOWED = "ImageNotAllowed"
SERVICE_ACCOUNT_NOT_ALLOWED = "ServiceAccountNotAllowed"
WORKER_ROLE_NOT_BOUND = "WorkerRoleNotBound"
HOLD_CHILDREN = frozenset({IMAGE_NOT_ALLOWED, SERVICE_ACCOUNT_NOT_ALLOWED})
"""Problems under which the agent's children are left untouched."""


@dataclass(frozen=True)
class AgentPolicy:
    allowed_image_prefixes: tuple[str, ...] = ()
    """spec.image must start with one of these (empty: any image). The operator's own runtime
    image is always allowed."""
    allow_foreign_service_accounts: bool = True
    """Whether spec.pod.serviceAccountName may name a ServiceAccount the operator did not create
    (never bound to the worker role either way)."""


def image_allowed(image: str, policy: AgentPolicy, default_image: str) -> bool:
    if not policy.allowed_image_prefixes or image == default_image:
        return True
    return any(image.startswith(p) for p in policy.allowed_image_prefixes)


def agent_policy_problems(
    agent: VoiceAgent, policy: AgentPolicy, default_image: str
) -> list[Problem]:
    """Every restriction ``agent`` breaks, each naming its field."""
    out = []
    image = agent.spec.image
    if image is not None and not image_allowed(image, policy, default_image):
        allowed = ", ".join(repr(p) for p in policy.allowed_image_prefixes)
        out.append(
            Problem(
                IMAGE_NOT_ALLOWED,
                f"spec.image {image!r} is not allowed by the operator's configuration "
                f"(allowed prefixes: {allowed})",
            )
        )
    sa = agent.spec.pod.service_account_name
    if sa is not None and not policy.allow_foreign_service_accounts:
        out.append(
            Problem(
                SERVICE_ACCOUNT_NOT_ALLOWED,
                f"spec.pod.serviceAccountName {sa!r}: the operator's configuration allows only "
                "the worker ServiceAccount it creates; unset the field",
            )
        )
    return out


def agent_notices(agent: VoiceAgent) -> list[Problem]:
    """What works, but less than it should: a foreign ServiceAccount is never bound to the
    worker role, so its pods cannot keep their call annotations (status.activeCalls, the
    scale-down order) current."""
    sa = agent.spec.pod.service_account_name
    if sa is None:
        return []
    return [
        Problem(
            WORKER_ROLE_NOT_BOUND,
            f"spec.pod.serviceAccountName {sa!r} was not created by the operator: the worker "
            "role is not bound to it (grant it patch on its own pod yourself, or unset the "
            "field); active calls are not reported and a scale-down may pick a busy pod",
        )
    ]
