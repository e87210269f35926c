"""A canary rollout's objects: the canary pool (Deployment ``<name>-canary``, its ConfigMap and
egress policy) and the split both pools read (ConfigMap ``<name>-rollout``).

The canary pool is the stable pool's Deployment rendered from the new configuration, with its
own name, a selector that adds ``kubevox.dev/track: canary`` (the stable selector, immutable,
does not have it: the stable pool's pods stay out of the canary's ReplicaSets) and a replica
count in proportion to its share. Its pods keep every other label: the metrics Service, the PDB
and the stable egress policy select them too; its own egress policy adds what the new
configuration reaches (NetworkPolicies add up).
"""

from __future__ import annotations

import copy
import json
import math

from kubevox_api import VoiceAgent, contract

from .agent import rollout_name
from .common import Obj, agent_metadata, agent_name, child_name

CANARY = "canary"


def canary_name(agent: VoiceAgent, suffix: str = "") -> str:
    return child_name(agent_name(agent), f"-canary{suffix}")


def canary_replicas(stable_replicas: int, weight: int) -> int:
    """The canary's pods for ``weight`` percent of the calls the stable pool's pods serve: at
    least one, at most as many."""
    return max(1, min(stable_replicas, math.ceil(stable_replicas * weight / 100)))


def canary_children(agent: VoiceAgent, stable: list[Obj], replicas: int) -> list[Obj]:
    """The canary pool of ``agent``'s new configuration, copied from the objects the stable
    pool would have with it (``stable``: build_agent_children's, plus the worker egress policy
    when there is one)."""
    name = agent_name(agent)
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in stable}
    config = copy.deepcopy(by_kind[("ConfigMap", child_name(name, "-config"))])
    config["metadata"]["name"] = canary_name(agent, "-config")
    deployment = copy.deepcopy(by_kind[("Deployment", child_name(name))])
    deployment["metadata"]["name"] = canary_name(agent)
    spec = deployment["spec"]
    spec["replicas"] = replicas
    spec["selector"]["matchLabels"][contract.LABEL_TRACK] = CANARY
    template = spec["template"]
    template["metadata"]["labels"][contract.LABEL_TRACK] = CANARY
    pod = template["spec"]
    for volume in pod["volumes"]:
        if volume["name"] == "config":
            volume["configMap"]["name"] = config["metadata"]["name"]
    pod["containers"][0]["env"].append({"name": contract.ROLLOUT_TRACK_ENV, "value": CANARY})
    out = [config, deployment]
    egress = by_kind.get(("NetworkPolicy", child_name(name, "-worker-egress")))
    if egress is not None:
        policy = copy.deepcopy(egress)
        policy["metadata"]["name"] = canary_name(agent, "-worker-egress")
        policy["spec"]["podSelector"]["matchLabels"][contract.LABEL_TRACK] = CANARY
        out.append(policy)
    return out


def split_config_map(agent: VoiceAgent, owner: Obj, split: tuple[int, int], digest: str) -> Obj:
    """The split of new calls both pools read: (canaryWeight, stableYield) percent."""
    weight, yield_ = split
    data = {"canaryHash": digest, "canaryWeight": weight, "stableYield": yield_}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": agent_metadata(agent, owner, rollout_name(agent), "worker"),
        "data": {contract.ROLLOUT_FILE: json.dumps(data, sort_keys=True)},
    }


def stable_pool_keys(agent: VoiceAgent) -> set[tuple[str, str]]:
    """The stable pool's objects that keep their configuration while a canary runs."""
    name = agent_name(agent)
    return {
        ("ConfigMap", child_name(name, "-config")),
        ("Deployment", child_name(name)),
        ("NetworkPolicy", child_name(name, "-worker-egress")),
    }


def canary_keys(agent: VoiceAgent) -> list[tuple[str, str]]:
    """The canary pool's objects that go with it, the Deployment first (it holds the calls).
    Its ConfigMap stays (the operator deletes no ConfigMap: docs/security/privilege.md): it
    holds the last canary's configuration, no secret, and goes with the VoiceAgent."""
    return [
        ("Deployment", canary_name(agent)),
        ("NetworkPolicy", canary_name(agent, "-worker-egress")),
    ]
