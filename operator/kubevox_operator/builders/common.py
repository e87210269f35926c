"""Names, labels, owner references and hashes shared by the builders."""

from __future__ import annotations

from typing import Any

from kubevox_api import CONFIG_ENV, VoiceAgent, contract
from kubevox_api.runtime_config import (
    LIVEKIT_API_KEY_ENV,
    LIVEKIT_API_SECRET_ENV,
    LIVEKIT_URL_ENV,
    stable_hash,
)

Obj = dict[str, Any]
MAX_NAME = 63


def child_name(owner: str, suffix: str = "") -> str:
    """``<owner><suffix>`` as a DNS label; long owner names are cut and made unique by a hash."""
    name = f"{owner}{suffix}"
    if len(name) <= MAX_NAME:
        return name
    tail = f"-{stable_hash(name, 8)}{suffix}"
    return owner[: MAX_NAME - len(tail)].rstrip("-.") + tail


def owner_reference(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", "kubevox.dev/v1alpha1"),
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def labels(component: str, instance: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kubevox",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "kubevox",
        contract.LABEL_MANAGED_BY: contract.MANAGED_BY,
        **extra,
    }


def metadata(name: str, namespace: str, owner: Obj, labels_: dict[str, str]) -> Obj:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels_,
        "ownerReferences": [owner_reference(owner)],
    }


def restricted_pod_security() -> Obj:
    """Pod-level half of the restricted Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def fail_job_on_exit(container: str, *codes: int) -> Obj:
    """A Job's podFailurePolicy rule: these exit codes of ``container`` fail the Job at once (a
    retry would end the same way)."""
    return {
        "action": "FailJob",
        "onExitCodes": {"containerName": container, "operator": "In", "values": list(codes)},
    }


IGNORE_DISRUPTION: Obj = {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
"""A Job's podFailurePolicy rule: an eviction or preemption is not the pod's fault (retried, not
counted)."""


def secret_env(name: str, secret: str, key: str) -> Obj:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


# --- a VoiceAgent's children ----------------------------------------------------------------


def agent_name(agent: VoiceAgent) -> str:
    return str(agent.metadata["name"])


def agent_namespace(agent: VoiceAgent) -> str:
    return str(agent.metadata.get("namespace", "default"))


def agent_labels(agent: VoiceAgent, component: str) -> dict[str, str]:
    return labels(component, agent_name(agent), {contract.LABEL_VOICE_AGENT: agent_name(agent)})


def agent_metadata(agent: VoiceAgent, owner: Obj, name: str, component: str) -> Obj:
    return metadata(name, agent_namespace(agent), owner, agent_labels(agent, component))


def livekit_env(agent: VoiceAgent) -> list[Obj]:
    """What every pod of the agent (worker or web gateway) reads first: where its config is
    mounted, the LiveKit URL, and the API key and secret from their Secret."""
    lk = agent.spec.livekit.credentials_secret_ref
    return [
        {"name": CONFIG_ENV, "value": contract.CONFIG_PATH},
        {"name": LIVEKIT_URL_ENV, "value": agent.spec.livekit.url},
        secret_env(LIVEKIT_API_KEY_ENV, lk.name, lk.api_key_key),
        secret_env(LIVEKIT_API_SECRET_ENV, lk.name, lk.api_secret_key),
    ]


def placement(agent: VoiceAgent, *, affinity: bool = True) -> Obj:
    """spec.pod's scheduling fields for a pod spec (the workers' affinity, e.g. spreading
    them, is theirs alone: ``affinity=False`` for the agent's other pods)."""
    pod = agent.spec.pod
    out: Obj = {}
    if pod.node_selector:
        out["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        out["tolerations"] = [t.to_k8s() for t in pod.tolerations]
    if affinity and pod.affinity:
        out["affinity"] = pod.affinity
    if pod.priority_class_name:
        out["priorityClassName"] = pod.priority_class_name
    return out
