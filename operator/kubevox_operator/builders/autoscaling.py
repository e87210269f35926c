"""A VoiceAgent's autoscaler: an HPA on the workers' active calls, or a KEDA ScaledObject on the
calls (active and waiting) read from Prometheus."""

from __future__ import annotations

import json
import re
from typing import Final

from kubevox_api import VoiceAgent, contract

from .common import Obj, agent_metadata, agent_name, agent_namespace, child_name

AUTOSCALER_KINDS: Final[dict[str, str]] = {
    "hpa": "HorizontalPodAutoscaler",
    "keda": "ScaledObject",
}
"""The child kind of each spec.scaling.autoscaler (both named like the Deployment)."""


def hpa(agent: VoiceAgent, owner: Obj) -> Obj:
    scaling = agent.spec.scaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": agent_metadata(agent, owner, child_name(agent_name(agent)), "autoscaler"),
        "spec": {
            "scaleTargetRef": scale_target(agent),
            "minReplicas": min_replicas(agent),
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": contract.ACTIVE_CALLS_METRIC},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(scaling.target_calls_per_pod),
                        },
                    },
                }
            ],
            "behavior": scaling_behavior(agent),
        },
    }


def scale_target(agent: VoiceAgent) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": child_name(agent_name(agent))}


def min_replicas(agent: VoiceAgent) -> int:
    # Only KEDA scales to zero: it reads the waiting calls (see waiting_calls_query); an HPA's
    # minReplicas of 0 needs the HPAScaleToZero alpha gate and sees no call without a pod.
    if agent.spec.scaling.autoscaler == "keda":
        return agent.spec.scaling.min_replicas
    return max(agent.spec.scaling.min_replicas, 1)


def scaling_behavior(agent: VoiceAgent) -> Obj:
    """Up fast (a new call must find a worker), down one pod a minute after the calls stayed low
    for scaleDownStabilizationSeconds (each removed pod drains its calls first)."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15},
                {"type": "Pods", "value": 4, "periodSeconds": 15},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": agent.spec.scaling.scale_down_stabilization_seconds,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        },
    }


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def promql_selector(matchers: dict[str, str]) -> str:
    """``{a="x",b="y"}``: each value a PromQL string literal (PromQL takes Go's escapes, of
    which JSON's are a subset), so no value can end the string early."""
    assert all(_LABEL_NAME.match(k) for k in matchers), matchers
    return "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in matchers.items()) + "}"


def active_calls_query(namespace: str, agent: str) -> str:
    """Calls in progress on the agent's workers that are not terminating, 0 when none reports.

    The worker labels the metric with ``agent`` = the VoiceAgent's metadata.name and
    ``namespace`` = its namespace (agent_runtime/metrics.py). Terminating pods drain their last
    calls and take no new ones: like the HPA's Pods metric, which skips pods being deleted, they
    do not count (kube-state-metrics' kube_pod_deletion_timestamp names them; without it the
    ``unless`` removes nothing). ``or vector(0)``: no series is 0 calls, not an error for KEDA.
    """
    selector = promql_selector({"namespace": namespace, "agent": agent})
    return (
        f"sum({contract.ACTIVE_CALLS_METRIC}{selector}"
        " unless on(namespace,pod) kube_pod_deletion_timestamp) or vector(0)"
    )


def calls_query(namespace: str, agent: str) -> str:
    """The agent's calls as the operator counts them (``kubevox_agent_calls``): its
    non-terminating workers' calls plus the callers waiting for a worker, who need one as much
    (with no pod running they are the only signal there is). Both come from one look, so a call
    a worker has just taken counts once: summing the workers' gauge and a waiting gauge scraped
    at other moments counted it twice for up to a scrape interval, and started a pod for nothing.
    ``max``: only the replica kopf peering lets act reports, but for a moment two may. Without it
    (the operator not scraped, or LiveKit unreachable from it), the workers' own count."""
    selector = promql_selector({"agent_namespace": namespace, "agent": agent})
    return (
        f"max({contract.AGENT_CALLS_METRIC}{selector}) or ({active_calls_query(namespace, agent)})"
    )


def scaled_object(agent: VoiceAgent, owner: Obj, prometheus_url: str) -> Obj:
    """The KEDA ScaledObject of ``autoscaler: keda``: the HPA's bounds, target and behavior, the
    metric read from Prometheus. KEDA makes its own HPA from it (``keda-hpa-<name>``)."""
    scaling = agent.spec.scaling
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": agent_metadata(agent, owner, child_name(agent_name(agent)), "autoscaler"),
        "spec": {
            "scaleTargetRef": scale_target(agent),
            "minReplicaCount": min_replicas(agent),
            "maxReplicaCount": scaling.max_replicas,
            # With minReplicaCount >= 1, KEDA (2.21) leaves scaling to its HPA, which runs the
            # query at the HPA controller's sync period (15 s by default): that is today's pace.
            # pollingInterval paces KEDA's own loop (scaling from and to zero, cached metrics):
            # 5 s, not KEDA's 30, so that once it acts a first call waits seconds for a pod.
            "pollingInterval": 5,
            # Also only for scaling to zero (after the last active poll): the same low-volume
            # wait as the scale-down stabilization.
            "cooldownPeriod": scaling.scale_down_stabilization_seconds,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": scaling_behavior(agent)}},
            "triggers": [
                {
                    "type": "prometheus",
                    # AverageValue: replicas = ceil(total calls / threshold), as the HPA's
                    # per-pod average target does.
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": calls_query(agent_namespace(agent), agent_name(agent)),
                        "threshold": str(scaling.target_calls_per_pod),
                    },
                }
            ],
        },
    }
