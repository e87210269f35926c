"""Names, labels, owner references and hashes shared by the builders."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubevox_api import VoiceAgent, contract

Obj = dict[str, Any]
MAX_NAME = 63


def stable_hash(value: Any, length: int = 16) -> str:
    """Hash of a JSON-able value, independent of key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


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
