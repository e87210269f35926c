"""VoiceAgent → ConfigMap, ServiceAccount, RoleBinding, Deployment, HPA, Service, PDB,
ServiceMonitor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import contract
from ..api import (
    CONFIG_ENV,
    CONFIG_FILE,
    AgentRuntimeConfig,
    KnowledgeBase,
    VoiceAgent,
    credential_env,
    render_runtime_config,
)
from ..api.runtime_config import LIVEKIT_API_KEY_ENV, LIVEKIT_API_SECRET_ENV, LIVEKIT_URL_ENV
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


@dataclass(frozen=True)
class OperatorDefaults:
    """Settings of the operator process that shape the children."""

    image: str = "ghcr.io/kubevox/agent-runtime:0.1.0"
    service_monitor: bool = False
    """Whether the monitoring.coreos.com ServiceMonitor CRD exists in the cluster."""


@dataclass
class AgentChildren:
    """Every object one VoiceAgent owns, in apply order, and the config hash they carry."""

    objects: list[Obj] = field(default_factory=list)
    config_hash: str = ""


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
    return {"app.kubernetes.io/name": "kubevox", contract.LABEL_VOICE_AGENT: _name(agent)}


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
    out.objects.append(_hpa(agent, owner))
    out.objects.append(_service(agent, owner))
    out.objects.append(_pdb(agent, owner))
    if defaults.service_monitor:
        out.objects.append(_service_monitor(agent, owner))
    return out


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
    """Lets the worker patch its own pod's deletion-cost annotation (docs/operator.md)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(agent, owner, child_name(_name(agent), "-worker"), "worker"),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": contract.WORKER_CLUSTER_ROLE,
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": worker_service_account(agent),
                "namespace": _ns(agent),
            }
        ],
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
        # No "replicas": the HorizontalPodAutoscaler owns it.
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
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": child_name(_name(agent)),
            },
            # HPA minReplicas 0 needs the HPAScaleToZero alpha gate; 1 is the floor elsewhere.
            "minReplicas": max(scaling.min_replicas, 1),
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
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": 15},
                        {"type": "Pods", "value": 4, "periodSeconds": 15},
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": scaling.scale_down_stabilization_seconds,
                    "selectPolicy": "Min",
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                },
            },
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
