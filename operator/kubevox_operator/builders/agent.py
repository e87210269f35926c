"""VoiceAgent → ConfigMap, ServiceAccount, RoleBinding, Deployment, autoscaler (HPA or KEDA
ScaledObject), Service, PDB, ServiceMonitor; with spec.web, the web gateway (web.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kubevox_api import (
    CONFIG_FILE,
    AgentRuntimeConfig,
    KnowledgeBase,
    VoiceAgent,
    contract,
    credential_env,
    render_runtime_config,
)
from kubevox_api.runtime_config import config_hash
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env, sink_secret_ref

from .autoscaling import hpa, scaled_object
from .common import (
    Obj,
    agent_labels,
    agent_metadata,
    agent_name,
    agent_namespace,
    child_name,
    livekit_env,
    placement,
    restricted_container_security,
    restricted_pod_security,
    secret_env,
)
from .recording import expiry_cronjob, storage_key_env
from .sizing import worker_resources
from .web import build_web_children

# Fields of the spec that never reach the worker process, or reach the pod template directly:
# changing them must not change the config hash (and so must not roll the pods).
# spec.web is read by the web gateway only (its own Deployment): a new allowed origin must not
# roll the workers and drain their calls.
OptionalKind = Literal["ServiceMonitor", "ScaledObject"]
"""Child kinds of CRDs that may be absent from a cluster (and appear or go at run time)."""


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


def rollout_name(agent: VoiceAgent) -> str:
    """The ConfigMap with a canary rollout's split (agent_runtime/traffic_split.py)."""
    return child_name(agent_name(agent), "-rollout")


def worker_service_account(agent: VoiceAgent) -> str:
    return agent.spec.pod.service_account_name or child_name(agent_name(agent), "-worker")


def agent_selector(agent: VoiceAgent) -> dict[str, str]:
    return {"app.kubernetes.io/name": "kubevox", contract.LABEL_VOICE_AGENT: agent_name(agent)}


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
    out.objects.append(worker_deployment(agent, owner, knowledge_bases, digest, defaults))
    out.autoscaler_missing = autoscaler_missing(agent, defaults)
    if not out.autoscaler_missing:
        if agent.spec.scaling.autoscaler == "keda":
            out.objects.append(scaled_object(agent, owner, defaults.prometheus_url))
        else:
            out.objects.append(hpa(agent, owner))
    out.objects.append(_service(agent, owner))
    out.objects.append(_pdb(agent, owner))
    if "ServiceMonitor" in defaults.served:
        out.objects.append(_service_monitor(agent, owner))
    out.objects += build_web_children(agent, owner, config, defaults.image)
    if agent.spec.recording is not None:
        out.objects.append(expiry_cronjob(agent, owner, defaults.image))
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


def config_document(config: AgentRuntimeConfig) -> str:
    """The runtime configuration file (``agent.json``) the worker and the test Job read."""
    return config.model_dump_json(by_alias=True, exclude_none=True, indent=2)


def _config_map(agent: VoiceAgent, owner: Obj, config: AgentRuntimeConfig) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": agent_metadata(
            agent, owner, child_name(agent_name(agent), "-config"), "config"
        ),
        "data": {CONFIG_FILE: config_document(config)},
    }


def _service_account(agent: VoiceAgent, owner: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": agent_metadata(agent, owner, worker_service_account(agent), "worker"),
    }


def _role_binding(agent: VoiceAgent, owner: Obj) -> Obj:
    """Lets the worker patch its own pod's deletion-cost annotation (docs/operator.md).

    Only the ServiceAccount the operator creates is bound: binding one spec.pod.serviceAccountName
    names would hand the worker role to whatever else runs as it (the status says so:
    policy.agent_notices). Then the binding has no subject, so that server-side apply also
    takes back a subject bound before (an older operator, the field set after creation)."""
    subjects = [
        {
            "kind": "ServiceAccount",
            "name": worker_service_account(agent),
            "namespace": agent_namespace(agent),
        }
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": agent_metadata(
            agent, owner, child_name(agent_name(agent), "-worker"), "worker"
        ),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": contract.WORKER_CLUSTER_ROLE,
        },
        # Empty, not absent: the apply must differ from a binding that still has a subject.
        "subjects": subjects if agent.spec.pod.service_account_name is None else [],
    }


def worker_env(agent: VoiceAgent, knowledge_bases: dict[str, KnowledgeBase]) -> list[Obj]:
    spec = agent.spec
    env = livekit_env(agent)
    providers: list[tuple[Any, str]] = [
        (spec.stt, credential_env("stt")),
        (spec.llm, credential_env("llm")),
        *((f, credential_env("llm", i)) for i, f in enumerate(spec.llm.fallbacks, start=1)),
        (spec.tts, credential_env("tts")),
    ]
    if spec.analysis_llm is not None:
        providers.append((spec.analysis_llm, credential_env("analysis")))
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
    if spec.call_events is not None:  # the outbox's and each sink's secret
        outbox = spec.call_events.outbox.redis_url_secret_ref
        env.append(secret_env(OUTBOX_REDIS_ENV, outbox.name, outbox.key))
        for i, sink in enumerate(spec.call_events.sinks):
            ref = sink_secret_ref(sink)
            env.append(secret_env(sink_secret_env(i), ref.name, ref.key))
    if spec.recording is not None:
        env += storage_key_env(spec.recording.storage)
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


def worker_deployment(
    agent: VoiceAgent,
    owner: Obj,
    knowledge_bases: dict[str, KnowledgeBase],
    digest: str,
    defaults: OperatorDefaults,
) -> Obj:
    spec = agent.spec
    pod = spec.pod
    pod_labels = {**pod.labels, **agent_labels(agent, "worker")}  # ours win on conflict
    mounts: list[Obj] = [
        {"name": "config", "mountPath": contract.CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": contract.TMP_DIR},
        {"name": "run", "mountPath": contract.RUN_DIR},
    ]
    container = {
        "name": "agent",
        "image": spec.image or defaults.image,
        "command": [contract.RUNTIME_COMMAND],
        "args": list(contract.WORKER_ARGS),
        "env": worker_env(agent, knowledge_bases),
        "ports": [
            {"name": contract.HEALTH_PORT_NAME, "containerPort": contract.HEALTH_PORT},
            {"name": contract.METRICS_PORT_NAME, "containerPort": contract.METRICS_PORT},
        ],
        # Model loading can take a while: the startup probe covers it, then liveness is strict.
        "startupProbe": _probe(5, 60),
        "readinessProbe": _probe(5, 3),
        "livenessProbe": _probe(10, 6),
        "resources": worker_resources(agent),
        "securityContext": restricted_container_security(),
        "volumeMounts": mounts,
    }
    pod_spec: Obj = {
        "serviceAccountName": worker_service_account(agent),
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": spec.drain_timeout_seconds + contract.DRAIN_MARGIN_SECONDS,
        "securityContext": restricted_pod_security(),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": child_name(agent_name(agent), "-config")}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ],
    }
    if spec.rollout.strategy == "Canary":  # both pools read the split of new calls
        mounts.append({"name": "rollout", "mountPath": contract.ROLLOUT_DIR, "readOnly": True})
        split = {"name": rollout_name(agent), "optional": True}
        pod_spec["volumes"].append({"name": "rollout", "configMap": split})
    pod_spec.update(placement(agent))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": agent_metadata(agent, owner, child_name(agent_name(agent)), "worker"),
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


def _service(agent: VoiceAgent, owner: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": agent_metadata(
            agent, owner, child_name(agent_name(agent), "-metrics"), "metrics"
        ),
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
        "metadata": agent_metadata(agent, owner, child_name(agent_name(agent)), "worker"),
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
        "metadata": agent_metadata(agent, owner, child_name(agent_name(agent)), "metrics"),
        "spec": {
            "selector": {"matchLabels": agent_labels(agent, "metrics")},
            "endpoints": [{"port": contract.METRICS_PORT_NAME, "interval": "15s"}],
        },
    }
