"""Types shared by VoiceAgent and KnowledgeBase: Secret references, conditions, pod extras."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, StringConstraints

from .base import KubeModel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""RFC 1123 label: what Kubernetes accepts as a Service or Secret name segment."""
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""RFC 1123 subdomain: what Kubernetes accepts as a ConfigMap or Secret name."""
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
"""A ConfigMap or Secret data key."""
HTTP_URL = r"^https?://[^\s/$.?#][^\s]*$"
"""An http(s) URL."""
LANGUAGE_TAG = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
"""A BCP 47 language tag such as ``en`` or ``en-US``."""
QUANTITY = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
"""A Kubernetes resource quantity such as ``500m``, ``2`` or ``1Gi``."""

ResourceName = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]
DataKey = Annotated[str, StringConstraints(pattern=CONFIG_KEY, max_length=253)]
ShortString = Annotated[str, StringConstraints(max_length=253)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY, max_length=64)]

AGENT_NAME_MAX = 63
"""Longest LiveKit agent name kubevox gives or accepts (a label value: it names the workers in
metrics and logs too)."""
AgentName = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=AGENT_NAME_MAX)]
DISPATCH_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
DispatchName = Annotated[str, StringConstraints(pattern=DISPATCH_NAME, max_length=AGENT_NAME_MAX)]
"""An effective agent name: spec.agentName, or the default ``<namespace>.<name>``."""


def _unique_names(items: list[Any]) -> list[Any]:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"name {item.name!r} is listed more than once")
        seen.add(item.name)
    return items


_Named = TypeVar("_Named")

UniqueByName = Annotated[
    list[_Named],
    Field(
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
    ),
    AfterValidator(_unique_names),
]
"""Annotations of a list whose entries are identified by their ``name``: the API server refuses
duplicates (a list-map), and so does pydantic."""


class SecretKeySelector(KubeModel):
    """One key of a Secret in the object's own namespace."""

    name: ResourceName
    """Name of the Secret, in the same namespace as the object that references it."""
    key: DataKey
    """Key within the Secret whose value is used."""


class ConfigMapKeySelector(KubeModel):
    """A ConfigMap in the object's own namespace, and optionally one of its keys."""

    name: ResourceName
    """Name of the ConfigMap, in the same namespace as the object that references it."""
    key: DataKey | None = None
    """Key within the ConfigMap. When omitted, every key of the ConfigMap is used."""


class Credentials(KubeModel):
    """Where a provider's API key comes from. Secrets are only ever referenced, never copied."""

    secret_key_ref: SecretKeySelector
    """The Secret key that holds the API key; it reaches the pod as an environment variable."""


class Condition(KubeModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: Annotated[str, StringConstraints(max_length=316, pattern=r"^[A-Za-z][A-Za-z0-9]*$")]
    """Type of the condition, e.g. Ready, Progressing, Degraded."""
    status: Literal["True", "False", "Unknown"]
    """Status of the condition: True, False or Unknown."""
    reason: Annotated[
        str, StringConstraints(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    ]
    """A programmatic, CamelCase identifier of why the condition is in its state."""
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    """A human-readable explanation of the state."""
    last_transition_time: datetime
    """When the condition last changed status."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The .metadata.generation the condition was computed from."""


class ResourceList(KubeModel):
    """Amounts of compute resources (corev1.ResourceList)."""

    cpu: Quantity | None = None
    """CPU, in cores or millicores (``500m``)."""
    memory: Quantity | None = None
    """Memory, in bytes with a suffix (``2Gi``)."""
    ephemeral_storage: Quantity | None = Field(default=None, alias="ephemeral-storage")
    """Local scratch space (``1Gi``)."""


class ResourceRequirements(KubeModel):
    """CPU and memory for each worker pod (corev1.ResourceRequirements)."""

    requests: ResourceList = Field(default_factory=ResourceList)
    """Resources reserved for the pod; the scheduler places it where they are free. Unset
    amounts are sized for the agent's calls (see resources)."""
    limits: ResourceList = Field(default_factory=ResourceList)
    """Upper bounds. A memory limit protects the node, and a worker whose working set reaches
    90 % of it takes no new call (the next one could get the pod killed, with every call in
    it); a CPU limit throttles audio and is best left unset for real-time workloads. An unset
    memory limit is sized for the agent's calls (see resources)."""


class Toleration(KubeModel):
    """Lets worker pods run on nodes with a matching taint (corev1.Toleration)."""

    key: ShortString | None = None
    """Taint key the toleration applies to; empty with operator Exists matches all taints."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Exists matches any value; Equal matches ``value``."""
    value: ShortString | None = None
    """Taint value to match when the operator is Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; empty matches all effects."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """For NoExecute: how long the pod stays bound after the taint appears."""


AffinitySpec = Annotated[
    dict[str, Any],
    Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}),
]
"""corev1.Affinity, passed to the pod unchanged and validated by the API server there."""


class PodOptions(KubeModel):
    """Pod-level settings a platform team sets on every worker pod."""

    node_selector: dict[str, ShortString] = Field(default_factory=dict, max_length=64)
    """Node labels the worker pods must be scheduled on."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints the worker pods tolerate."""
    affinity: AffinitySpec | None = None
    """Node and pod (anti-)affinity rules, in the form of corev1.Affinity."""
    priority_class_name: ResourceName | None = None
    """PriorityClass of the worker pods; live calls deserve a high one."""
    service_account_name: ResourceName | None = None
    """ServiceAccount the worker pods run as (default: the namespace's ``default``)."""
    annotations: dict[ShortString, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict, max_length=64
    )
    """Extra annotations on the worker pods (e.g. for a service mesh or log shipper)."""
    labels: dict[ShortString, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict, max_length=64
    )
    """Extra labels on the worker pods; kubevox's own app.kubernetes.io labels win on conflict."""
