"""VoiceAgent ``spec.web`` → the agent's web gateway: a Deployment running ``kubevox-agent web``
(the call page and ``POST /v1/calls``), its Service and, when declared, an Ingress.

The gateway holds the LiveKit API secret (it mints the callers' tokens) and nothing else: no
ServiceAccount token, no egress (its NetworkPolicy is in network.py), the restricted Pod
Security Standard. One replica: the rate limit of spec.web.rateLimit is then exact (a token
bucket in the process); calls in progress never pass through it, so a restart delays only the
calls starting in those seconds."""

from __future__ import annotations

from kubevox_api import AgentRuntimeConfig, VoiceAgent, contract
from kubevox_api.runtime_config import stable_hash
from kubevox_api.voiceagent_web import WebAccess, WebIngress

from .common import (
    Obj,
    agent_metadata,
    agent_name,
    child_name,
    labels,
    livekit_env,
    placement,
    restricted_container_security,
    restricted_pod_security,
    secret_env,
)

WEB_SUFFIX = "-web"
RESOURCES: Obj = {
    # Measured: 65 MiB resident after serving the page and minting calls (docs/web.md), ready
    # 0.4 s after start; signing a token takes well under a millisecond of CPU.
    "requests": {"cpu": "50m", "memory": "96Mi"},
    "limits": {"memory": "192Mi"},
}


def web_name(agent: VoiceAgent) -> str:
    """The gateway's Deployment, Service and Ingress name: ``<agent>-web``."""
    return child_name(agent_name(agent), WEB_SUFFIX)


def web_policy_name(agent: VoiceAgent) -> str:
    """The gateway's NetworkPolicy (network.py): ``<agent>-web-egress``."""
    return child_name(agent_name(agent), f"{WEB_SUFFIX}-egress")


def web_selector(agent: VoiceAgent) -> dict[str, str]:
    """The gateway's pods. Not kubevox.dev/voiceagent, which selects the agent's workers."""
    return {
        contract.LABEL_NAME: contract.APP_NAME,
        contract.LABEL_COMPONENT: "web",
        contract.LABEL_WEB_GATEWAY: agent_name(agent),
    }


def _object_metadata(agent: VoiceAgent, owner: Obj, name: str) -> Obj:
    # kubevox.dev/voiceagent on the objects (not their pods): a change to one queues the agent.
    return agent_metadata(agent, owner, name, "web")


def build_web_children(
    agent: VoiceAgent, owner: Obj, config: AgentRuntimeConfig, image: str
) -> list[Obj]:
    """The gateway's objects; none without spec.web. ``image``: the operator's default runtime
    image (spec.image wins, as for the workers)."""
    web = agent.spec.web
    if web is None:
        return []
    out = [_deployment(agent, web, owner, config, image), _service(agent, owner)]
    if web.ingress is not None:
        out.append(_ingress(agent, owner, web.ingress))
    return out


def _env(agent: VoiceAgent, web: WebAccess) -> list[Obj]:
    env = [*livekit_env(agent), {"name": "HOME", "value": contract.TMP_DIR}]
    key = web.auth.shared_key_secret_ref
    if key is not None:
        env.append(secret_env(contract.WEB_SHARED_KEY_ENV, key.name, key.key))
    return env


def _deployment(
    agent: VoiceAgent, web: WebAccess, owner: Obj, config: AgentRuntimeConfig, image: str
) -> Obj:
    spec = agent.spec
    probe: Obj = {
        "httpGet": {"path": "/healthz", "port": contract.WEB_PORT_NAME},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
    }
    container: Obj = {
        "name": "web",
        "image": spec.image or image,
        "command": [contract.RUNTIME_COMMAND],
        "args": list(contract.WEB_ARGS),
        "env": _env(agent, web),
        "ports": [{"name": contract.WEB_PORT_NAME, "containerPort": contract.WEB_PORT}],
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 60},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": RESOURCES,
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": contract.CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": contract.TMP_DIR},
        ],
    }
    pod_spec: Obj = {
        # It calls no Kubernetes API: no token in the pod.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": child_name(agent_name(agent), "-config")}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    # Scheduled where the workers may be (a tenant's node pool and its taints).
    pod_spec.update(placement(agent, affinity=False))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _object_metadata(agent, owner, web_name(agent)),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": web_selector(agent)},
            "revisionHistoryLimit": 3,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": {
                        **labels("web", agent_name(agent), {}),
                        **web_selector(agent),
                    },
                    # The gateway reads the config once, at start: a new one rolls it (cheap,
                    # unlike the workers, whose calls drain).
                    "annotations": {contract.CONFIG_HASH_ANNOTATION: stable_hash(config.to_k8s())},
                },
                "spec": pod_spec,
            },
        },
    }


def _service(agent: VoiceAgent, owner: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _object_metadata(agent, owner, web_name(agent)),
        "spec": {
            "selector": web_selector(agent),
            "ports": [
                {
                    "name": contract.WEB_PORT_NAME,
                    "port": contract.WEB_SERVICE_PORT,
                    "targetPort": contract.WEB_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _ingress(agent: VoiceAgent, owner: Obj, ingress: WebIngress) -> Obj:
    spec: Obj = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": web_name(agent),
                                    "port": {"name": contract.WEB_PORT_NAME},
                                }
                            },
                        }
                    ]
                },
            }
        ]
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _object_metadata(agent, owner, web_name(agent)),
        "spec": spec,
    }
