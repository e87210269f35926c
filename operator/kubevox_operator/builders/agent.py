"""VoiceAgent → ConfigMap, ServiceAccount, RoleBinding, Deployment, autoscaler (HPA or KEDA
ScaledObject), Service, PDB, ServiceMonitor."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from kubevox_api import (
    CONFIG_ENV,
    CONFIG_FILE,
    AgentRuntimeConfig,
    KnowledgeBase,
    VoiceAgent,
    contract,
    credential_env,
    render_runtime_config,
)
from kubevox_api.runtime_config import LIVEKIT_API_KEY_ENV, LIVEKIT_API_SECRET_ENV, LIVEKIT_URL_ENV

from .common import (
    Obj,
    child_name,
    labels,
    metadata,
    restricted_container_security,
    restricted_pod_security,
    secret_env,
    stable_hash,
)

# Fields of the spec that never reach the worker process, or reach the pod template directly:
# changing them must not change the config hash (and so must not roll the pods).
_NOT_IN_HASH = ("scaling", "resources", "pod", "image")


OptionalKind = Literal["ServiceMonitor", "ScaledObject"]
"""Child kinds of CRDs that may be absent from a cluster (and appear or go at run time)."""
AUTOSCALER_KINDS: Final[dict[str, str]] = {
    "hpa": "HorizontalPodAutoscaler",
    "keda": "ScaledObject",
}
"""The child kind of each spec.scaling.autoscaler (both named like the Deployment)."""


@dataclass(frozen=True)
class OperatorDefaults:
    """Settings of the operator process that shape the children."""

    image: str = "ghcr.io/kubevox/agent-runtime:0.1.0"
    served: frozenset[OptionalKind] = frozenset()
    """Optional kinds whose CRD the cluster serves right now."""
    prometheus_url: str = ""
    """Prometheus the KEDA ScaledObjects query ("" when the operator was given none)."""
    ingest_allowed_cidrs: str = ""
    """Internal networks URL sources may reach (comma-separated CIDRs; "" none)."""


@dataclass
class AgentChildren:
    """Every object one VoiceAgent owns, in apply order, and the config hash they carry."""

    objects: list[Obj] = field(default_factory=list)
    config_hash: str = ""
    autoscaler_missing: list[str] = field(default_factory=list)
    """What the agent's autoscaler needs and lacks (then none is built)."""


def config_hash(config: AgentRuntimeConfig) -> str:
    """Hash of what the worker process reads; scaling-only changes leave it alone."""
    data = config.to_k8s()
    spec = dict(data["spec"])
    scaling = spec.get("scaling", {})
    for key in _NOT_IN_HASH:
        spec.pop(key, None)
    spec["maxCallsPerPod"] = scaling.get("maxCallsPerPod")  # the worker's load limit
    return stable_hash({**data, "spec": spec})


def worker_service_account(agent: VoiceAgent) -> str:
    return agent.spec.pod.service_account_name or child_name(_name(agent), "-worker")


def agent_selector(agent: VoiceAgent) -> dict[str, str]:
    return {contract.LABEL_NAME: contract.APP_NAME, contract.LABEL_VOICE_AGENT: _name(agent)}


def build_agent_children(
    agent: VoiceAgent,
    owner: Obj,
    knowledge_bases: dict[str, KnowledgeBase],
    defaults: OperatorDefaults,
) -> AgentChildren:
    """The desired children of ``agent`` (``owner`` is its raw object, for the uid)."""
    config = render_runtime_config(agent, knowledge_bases)
    digest = config_hash(config)
    out = AgentChildren(config_hash=digest)
    out.objects.append(_config_map(agent, owner, config))
    if agent.spec.pod.service_account_name is None:
        out.objects.append(_service_account(agent, owner))
    out.objects.append(_role_binding(agent, owner))
    out.objects.append(_deployment(agent, owner, knowledge_bases, digest, defaults))
    out.autoscaler_missing = autoscaler_missing(agent, defaults)
    if not out.autoscaler_missing:
        if agent.spec.scaling.autoscaler == "keda":
            out.objects.append(scaled_object(agent, owner, defaults.prometheus_url))
        else:
            out.objects.append(_hpa(agent, owner))
    out.objects.append(_service(agent, owner))
    out.objects.append(_pdb(agent, owner))
    if "ServiceMonitor" in defaults.served:
        out.objects.append(_service_monitor(agent, owner))
    return out


def autoscaler_missing(agent: VoiceAgent, defaults: OperatorDefaults) -> list[str]:
    """What spec.scaling.autoscaler needs from the cluster and the operator and lacks."""
    if agent.spec.scaling.autoscaler != "keda":
        return []  # the HPA is built in; a missing custom metrics API shows in its conditions
    missing = []
    if "ScaledObject" not in defaults.served:
        missing.append("the cluster does not serve KEDA's ScaledObject CRD (keda.sh/v1alpha1)")
    if not defaults.prometheus_url:
        missing.append(
            "the operator has no Prometheus URL (--prometheus-url, env KUBEVOX_PROMETHEUS_URL)"
        )
    return missing


def _name(agent: VoiceAgent) -> str:
    return str(agent.metadata["name"])


def _ns(agent: VoiceAgent) -> str:
    return str(agent.metadata.get("namespace", "default"))


def _labels(agent: VoiceAgent, component: str) -> dict[str, str]:
    return labels(component, _name(agent), {contract.LABEL_VOICE_AGENT: _name(agent)})


def _meta(agent: VoiceAgent, owner: Obj, name: str, component: str) -> Obj:
    return metadata(name, _ns(agent), owner, _labels(agent, component))


def _config_map(agent: VoiceAgent, owner: Obj, config: AgentRuntimeConfig) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(agent, owner, child_name(_name(agent), "-config"), "config"),
        "data": {CONFIG_FILE: config.model_dump_json(by_alias=True, exclude_none=True, indent=2)},
    }


def _service_account(agent: VoiceAgent, owner: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(agent, owner, worker_service_account(agent), "worker"),
    }


def _role_binding(agent: VoiceAgent, owner: Obj) -> Obj:
    """Lets the worker patch its own pod's deletion-cost annotation (docs/operator.md).

    Only the ServiceAccount the operator creates is bound: binding one spec.pod.serviceAccountName
    names would hand the worker role to whatever else runs as it (the status says so:
    policy.agent_notices). Then the binding has no subject, so that server-side apply also
    takes back a subject bound before (an older operator, the field set after creation)."""
    subjects = [
        {"kind": "ServiceAccount", "name": worker_service_account(agent), "namespace": _ns(agent)}
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(agent, owner, child_name(_name(agent), "-worker"), "worker"),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": contract.WORKER_CLUSTER_ROLE,
        },
        # Empty, not absent: the apply must differ from a binding that still has a subject.
        "subjects": subjects if agent.spec.pod.service_account_name is None else [],
    }


def _env(agent: VoiceAgent, knowledge_bases: dict[str, KnowledgeBase]) -> list[Obj]:
    spec = agent.spec
    lk = spec.livekit.credentials_secret_ref
    env: list[Obj] = [
        {"name": CONFIG_ENV, "value": contract.CONFIG_PATH},
        {"name": LIVEKIT_URL_ENV, "value": spec.livekit.url},
        secret_env(LIVEKIT_API_KEY_ENV, lk.name, lk.api_key_key),
        secret_env(LIVEKIT_API_SECRET_ENV, lk.name, lk.api_secret_key),
    ]
    providers: list[tuple[Any, str]] = [
        (spec.stt, credential_env("stt")),
        (spec.llm, credential_env("llm")),
        *((f, credential_env("llm", i)) for i, f in enumerate(spec.llm.fallbacks, start=1)),
        (spec.tts, credential_env("tts")),
    ]
    for provider, var in providers:
        if provider.credentials is not None:
            ref = provider.credentials.secret_key_ref
            env.append(secret_env(var, ref.name, ref.key))
    config = render_runtime_config(agent, knowledge_bases)
    for ref, resolved in zip(spec.knowledge_bases, config.knowledge_bases, strict=True):
        kb = knowledge_bases[ref.name].spec
        store = kb.store.redis_url_secret_ref
        env.append(secret_env(resolved.redis_url_env, store.name, store.key))
        if resolved.embedding_api_key_env and kb.embedding.credentials is not None:
            cred = kb.embedding.credentials.secret_key_ref
            env.append(secret_env(resolved.embedding_api_key_env, cred.name, cred.key))
    env += [
        {"name": contract.POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {
            "name": contract.POD_NAMESPACE_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "PROMETHEUS_MULTIPROC_DIR", "value": contract.PROMETHEUS_MULTIPROC_DIR},
        {"name": "HOME", "value": contract.TMP_DIR},
    ]
    return env


def _probe(period: int, failures: int) -> Obj:
    return {
        "httpGet": {"path": "/", "port": contract.HEALTH_PORT_NAME},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 3,
    }


def _resources(agent: VoiceAgent) -> Obj:
    res = agent.spec.resources.to_k8s()
    return {k: v for k, v in res.items() if v}


def _deployment(
    agent: VoiceAgent,
    owner: Obj,
    knowledge_bases: dict[str, KnowledgeBase],
    digest: str,
    defaults: OperatorDefaults,
) -> Obj:
    spec = agent.spec
    pod = spec.pod
    pod_labels = {**pod.labels, **_labels(agent, "worker")}  # ours win on conflict
    container = {
        "name": "agent",
        "image": spec.image or defaults.image,
        "command": [contract.RUNTIME_COMMAND],
        "args": list(contract.WORKER_ARGS),
        "env": _env(agent, knowledge_bases),
        "ports": [
            {"name": contract.HEALTH_PORT_NAME, "containerPort": contract.HEALTH_PORT},
            {"name": contract.METRICS_PORT_NAME, "containerPort": contract.METRICS_PORT},
        ],
        # Model loading can take a while: the startup probe covers it, then liveness is strict.
        "startupProbe": _probe(5, 60),
        "readinessProbe": _probe(5, 3),
        "livenessProbe": _probe(10, 6),
        "resources": _resources(agent),
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": contract.CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": contract.TMP_DIR},
            {"name": "run", "mountPath": contract.RUN_DIR},
        ],
    }
    pod_spec: Obj = {
        "serviceAccountName": worker_service_account(agent),
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": spec.drain_timeout_seconds + contract.DRAIN_MARGIN_SECONDS,
        "securityContext": restricted_pod_security(),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": child_name(_name(agent), "-config")}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ],
    }
    if pod.node_selector:
        pod_spec["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        pod_spec["tolerations"] = [t.to_k8s() for t in pod.tolerations]
    if pod.affinity:
        pod_spec["affinity"] = pod.affinity
    if pod.priority_class_name:
        pod_spec["priorityClassName"] = pod.priority_class_name
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(agent, owner, child_name(_name(agent)), "worker"),
        # No "replicas": the autoscaler owns it.
        "spec": {
            "selector": {"matchLabels": agent_selector(agent)},
            "revisionHistoryLimit": 5,
            # Surge, never take a serving pod away first: its calls drain for up to an hour.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {**pod.annotations, contract.CONFIG_HASH_ANNOTATION: digest},
                },
                "spec": pod_spec,
            },
        },
    }


def _hpa(agent: VoiceAgent, owner: Obj) -> Obj:
    scaling = agent.spec.scaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(agent, owner, child_name(_name(agent)), "autoscaler"),
        "spec": {
            "scaleTargetRef": _scale_target(agent),
            "minReplicas": _min_replicas(agent),
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
            "behavior": _scaling_behavior(agent),
        },
    }


def _scale_target(agent: VoiceAgent) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": child_name(_name(agent))}


def _min_replicas(agent: VoiceAgent) -> int:
    # Only KEDA scales to zero: it reads the waiting calls (see waiting_calls_query); an HPA's
    # minReplicas of 0 needs the HPAScaleToZero alpha gate and sees no call without a pod.
    if agent.spec.scaling.autoscaler == "keda":
        return agent.spec.scaling.min_replicas
    return max(agent.spec.scaling.min_replicas, 1)


def _scaling_behavior(agent: VoiceAgent) -> Obj:
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


def _promql_selector(matchers: dict[str, str]) -> str:
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
    selector = _promql_selector({"namespace": namespace, "agent": agent})
    return (
        f"sum({contract.ACTIVE_CALLS_METRIC}{selector}"
        " unless on(namespace,pod) kube_pod_deletion_timestamp) or vector(0)"
    )


def calls_query(namespace: str, agent: str) -> str:
    """Calls in progress plus callers waiting for a worker (``kubevox_waiting_calls``, from the
    operator): a waiting call needs a worker as much as a live one, and it is the only signal
    there is when no pod runs. Each side is 0 when nothing reports it."""
    selector = _promql_selector({"agent_namespace": namespace, "agent": agent})
    return (
        f"({active_calls_query(namespace, agent)})"
        f" + (sum({contract.WAITING_CALLS_METRIC}{selector}) or vector(0))"
    )


def scaled_object(agent: VoiceAgent, owner: Obj, prometheus_url: str) -> Obj:
    """The KEDA ScaledObject of ``autoscaler: keda``: the HPA's bounds, target and behavior, the
    metric read from Prometheus. KEDA makes its own HPA from it (``keda-hpa-<name>``)."""
    scaling = agent.spec.scaling
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(agent, owner, child_name(_name(agent)), "autoscaler"),
        "spec": {
            "scaleTargetRef": _scale_target(agent),
            "minReplicaCount": _min_replicas(agent),
            "maxReplicaCount": scaling.max_replicas,
            # With minReplicaCount >= 1, KEDA (2.21) leaves scaling to its HPA, which runs the
            # query at the HPA controller's sync period (15 s by default): that is today's pace.
            # pollingInterval paces KEDA's own loop (scaling from and to zero, cached metrics):
            # 5 s, not KEDA's 30, so that once it acts a first call waits seconds for a pod.
            "pollingInterval": 5,
            # Also only for scaling to zero (after the last active poll): the same low-volume
            # wait as the scale-down stabilization.
            "cooldownPeriod": scaling.scale_down_stabilization_seconds,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _scaling_behavior(agent)}},
            "triggers": [
                {
                    "type": "prometheus",
                    # AverageValue: replicas = ceil(total calls / threshold), as the HPA's
                    # per-pod average target does.
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": calls_query(_ns(agent), _name(agent)),
                        "threshold": str(scaling.target_calls_per_pod),
                    },
                }
            ],
        },
    }


def _service(agent: VoiceAgent, owner: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(agent, owner, child_name(_name(agent), "-metrics"), "metrics"),
        "spec": {
            # Headless: Prometheus scrapes each pod; no cluster IP is spent on it.
            "clusterIP": "None",
            "selector": agent_selector(agent),
            "ports": [
                {
                    "name": contract.METRICS_PORT_NAME,
                    "port": contract.METRICS_PORT,
                    "targetPort": contract.METRICS_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _pdb(agent: VoiceAgent, owner: Obj) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(agent, owner, child_name(_name(agent)), "worker"),
        "spec": {
            # One pod at a time; each evicted pod drains its calls for its grace period.
            "maxUnavailable": 1,
            "selector": {"matchLabels": agent_selector(agent)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def _service_monitor(agent: VoiceAgent, owner: Obj) -> Obj:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(agent, owner, child_name(_name(agent)), "metrics"),
        "spec": {
            "selector": {"matchLabels": _labels(agent, "metrics")},
            "endpoints": [{"port": contract.METRICS_PORT_NAME, "interval": "15s"}],
        },
    }
