"""RBAC as the API server enforces it: impersonating the operator's ServiceAccount, every
request the operator makes is allowed and a sample of requests it must never make is denied;
cluster users get VoiceAgent/KnowledgeBase rights through the standard view/edit/admin roles."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubevox_api import VoiceAgent
from kubevox_operator.builders.autoscaling import scaled_object
from kubevox_operator.builders.network import EgressSettings, agent_egress

from tests.support.cases import VOICE_AGENT
from tests.support.tools import MANIFESTS

from .rbac import can_i

pytestmark = pytest.mark.cluster

OPERATOR = "system:serviceaccount:kubevox-system:kubevox-operator"

CHILDREN = (
    "configmaps",
    "services",
    "serviceaccounts",
    "deployments.apps",
    "horizontalpodautoscalers.autoscaling",
    "poddisruptionbudgets.policy",
    "rolebindings.rbac.authorization.k8s.io",
    "servicemonitors.monitoring.coreos.com",
    "scaledobjects.keda.sh",
    "jobs.batch",
    "networkpolicies.networking.k8s.io",
    "ingresses.networking.k8s.io",
)
WEB_GATEWAY = {
    "deployments.apps",
    "services",
    "ingresses.networking.k8s.io",
    "networkpolicies.networking.k8s.io",
}
"""The kinds of an agent's web gateway (spec.web), deleted when the spec drops it."""

# (verb, resource, namespace or "" for all namespaces / cluster scope, subresource or name)
# What the operator does (issue 3; operator/kubevox_operator): watch its API cluster-wide,
# server-side apply the children in the agents' namespaces, patch status, run ingestion Jobs,
# read referenced Secrets by name, post Events, and kopf's discovery and peering.
ALLOWED = [
    ("list", "voiceagents.kubevox.dev", ""),
    ("watch", "voiceagents.kubevox.dev", ""),
    ("get", "voiceagents.kubevox.dev", "clinic"),
    ("list", "knowledgebases.kubevox.dev", ""),
    ("watch", "knowledgebases.kubevox.dev", ""),
    ("patch", "voiceagents.kubevox.dev/status", "clinic"),
    ("patch", "knowledgebases.kubevox.dev/status", "clinic"),
    ("update", "voiceagents.kubevox.dev/finalizers", "clinic"),
    ("update", "knowledgebases.kubevox.dev/finalizers", "clinic"),
    # The children: applied in the agents' namespaces, watched cluster-wide.
    *[(verb, res, "clinic") for res in CHILDREN for verb in ("create", "patch", "get")],
    *[(verb, res, "") for res in (*CHILDREN, "pods") for verb in ("list", "watch")],
    # Removing spec.web deletes the web gateway's objects (each by the uid of one it owns).
    *[("delete", res, "clinic") for res in CHILDREN if res in WEB_GATEWAY],
    ("delete", "jobs.batch", "clinic"),
    # Switching spec.scaling.autoscaler deletes the other kind's object.
    ("delete", "horizontalpodautoscalers.autoscaling", "clinic"),
    ("delete", "scaledobjects.keda.sh", "clinic"),
    ("get", "secrets", "clinic"),
    ("create", "events", "clinic"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("list", "namespaces", ""),
    ("watch", "namespaces", ""),
    ("get", "clusterkopfpeerings.kopf.dev", ""),
    ("patch", "clusterkopfpeerings.kopf.dev", ""),
    ("watch", "clusterkopfpeerings.kopf.dev", ""),
]

DENIED = [
    # Secrets: only read by name, never written, listed or watched.
    ("list", "secrets", ""),
    ("watch", "secrets", "clinic"),
    ("create", "secrets", "clinic"),
    ("update", "secrets", "clinic"),
    ("patch", "secrets", "clinic"),
    ("delete", "secrets", "kubevox-system"),
    # Its own API's spec is the user's: no writes but status.
    ("create", "voiceagents.kubevox.dev", "clinic"),
    ("update", "voiceagents.kubevox.dev", "clinic"),
    ("delete", "knowledgebases.kubevox.dev", "clinic"),
    # Children are applied, never deleted wholesale (garbage collection removes them); only the
    # kinds the spec can drop are deleted, one by one.
    ("delete", "configmaps", "clinic"),
    ("deletecollection", "deployments.apps", "clinic"),
    ("deletecollection", "horizontalpodautoscalers.autoscaling", "clinic"),
    # Server-side apply is a patch: no update, on the autoscaler kinds either.
    ("update", "scaledobjects.keda.sh", "clinic"),
    ("update", "horizontalpodautoscalers.autoscaling", "clinic"),
    ("deletecollection", "configmaps", "clinic"),
    # No privilege escalation or cluster-wide writes it has no business doing.
    ("create", "clusterroles.rbac.authorization.k8s.io", ""),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", ""),
    ("create", "roles.rbac.authorization.k8s.io", "clinic"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", ""),
    ("impersonate", "users", ""),
    ("impersonate", "serviceaccounts", "clinic"),
    ("create", "serviceaccounts/token", "clinic"),
    ("create", "pods/exec", "clinic"),
    ("create", "pods", "clinic"),
    ("patch", "pods", "clinic"),
    ("delete", "pods", "clinic"),
    ("create", "namespaces", ""),
    ("delete", "namespaces", ""),
    ("patch", "nodes", ""),
    ("delete", "nodes", ""),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", ""),
    # The ServiceMonitor CRD is only watched (it appears and goes at run time), never written.
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("delete", "servicemonitors.monitoring.coreos.com", "clinic"),
    ("deletecollection", "networkpolicies.networking.k8s.io", "clinic"),
    # Its own admission policy is the installer's business.
    ("patch", "validatingadmissionpolicies.admissionregistration.k8s.io", ""),
    ("delete", "validatingadmissionpolicybindings.admissionregistration.k8s.io", ""),
    ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io", ""),
    ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io", ""),
    ("update", "leases.coordination.k8s.io", "kube-system"),
    ("create", "persistentvolumes", ""),
    ("delete", "clusterkopfpeerings.kopf.dev", ""),
]


@pytest.fixture(scope="module")
def rbac_applied(kubectl: Callable[..., Any]) -> Callable[..., Any]:
    # The local kube-controller-manager runs every controller as system:kube-controller-manager
    # (no --use-service-account-credentials), whose bootstrap role cannot update the aggregated
    # ClusterRoles; a real cluster runs the aggregation controller as its own ServiceAccount with
    # exactly this role. Grant it, so the real controller does the aggregating.
    out = kubectl(
        "create",
        "clusterrolebinding",
        "kubevox-test-clusterrole-aggregation",
        "--clusterrole=system:controller:clusterrole-aggregation-controller",
        "--user=system:kube-controller-manager",
    )
    assert out.returncode == 0 or "AlreadyExists" in out.stderr, out.stderr
    for f in ("rbac.yaml", "aggregated-roles.yaml"):
        out = kubectl("apply", "--server-side", "-f", str(MANIFESTS / "base" / f))
        assert out.returncode == 0, out.stderr
    return kubectl


@pytest.mark.parametrize(("verb", "resource", "namespace"), ALLOWED, ids=lambda x: str(x) or "*")
def test_operator_is_allowed(
    rbac_applied: Callable[..., Any], verb: str, resource: str, namespace: str
) -> None:
    assert can_i(rbac_applied, OPERATOR, verb, resource, namespace)


def test_operator_may_bind_only_the_worker_role(rbac_applied: Callable[..., Any]) -> None:
    """RoleBindings it creates can grant kubevox-agent-worker and nothing else."""

    def bind(name: str) -> bool:
        return can_i(
            rbac_applied, OPERATOR, "bind", "clusterroles.rbac.authorization.k8s.io", "clinic", name
        )

    assert bind("kubevox-agent-worker")
    assert not bind("cluster-admin")
    assert not bind("edit")
    assert not bind("kubevox-operator")


@pytest.mark.parametrize(("verb", "resource", "namespace"), DENIED, ids=lambda x: str(x) or "*")
def test_operator_is_denied(
    rbac_applied: Callable[..., Any], verb: str, resource: str, namespace: str
) -> None:
    assert not can_i(rbac_applied, OPERATOR, verb, resource, namespace)


def _eventually(check: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


@pytest.mark.parametrize(
    ("role", "allowed", "denied"),
    [
        ("view", ["get", "list", "watch"], ["create", "patch", "delete"]),
        ("edit", ["get", "create", "patch", "delete", "deletecollection"], []),
        ("admin", ["get", "create", "update", "delete"], []),
    ],
)
def test_standard_roles_aggregate_kubevox_rights(
    rbac_applied: Callable[..., Any], role: str, allowed: list[str], denied: list[str]
) -> None:
    """A user bound to the built-in role in a namespace (RoleBinding) gets the rights on
    VoiceAgents and KnowledgeBases there, through the clusterrole-aggregation controller."""
    user = f"kubevox-test-{role}"
    out = rbac_applied(
        "create",
        "rolebinding",
        f"kubevox-test-{role}",
        f"--clusterrole={role}",
        f"--user={user}",
        "-n",
        "clinic",
    )
    assert out.returncode == 0 or "AlreadyExists" in out.stderr, out.stderr
    for resource in ("voiceagents.kubevox.dev", "knowledgebases.kubevox.dev"):
        for verb in allowed:
            assert _eventually(
                functools.partial(can_i, rbac_applied, user, verb, resource, "clinic")
            ), (role, verb, resource)
        for verb in denied:
            assert not can_i(rbac_applied, user, verb, resource, "clinic"), (role, verb, resource)
        # Only in the namespace of the binding, and status stays the operator's.
        assert not can_i(rbac_applied, user, "get", resource, "kubevox-system")
        assert not can_i(rbac_applied, user, "patch", f"{resource}/status", "clinic")


def _obj(kind: str, api: str, name: str, **body: Any) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": "clinic"},
        **body,
    }


_LABELS = {"app": "kubevox-rbac-test"}
_POD: dict[str, Any] = {
    "metadata": {"labels": _LABELS},
    "spec": {"containers": [{"name": "c", "image": "ghcr.io/kubevox/agent-runtime:0.1.0"}]},
}
OPERATOR_WRITES = [
    _obj("ConfigMap", "v1", "rbac-test-config", data={"agent.json": "{}"}),
    _obj("ServiceAccount", "v1", "rbac-test-worker"),
    _obj(
        "Service",
        "v1",
        "rbac-test-metrics",
        spec={"selector": _LABELS, "ports": [{"name": "metrics", "port": 9100}]},
    ),
    _obj(
        "Deployment",
        "apps/v1",
        "rbac-test",
        spec={"selector": {"matchLabels": _LABELS}, "template": _POD},
    ),
    _obj(
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "rbac-test",
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rbac-test"},
            "maxReplicas": 3,
        },
    ),
    # The operator's own build, checked with strict field validation against KEDA's real CRD.
    scaled_object(
        VoiceAgent.model_validate(
            {**VOICE_AGENT, "metadata": {"name": "rbac-test", "namespace": "clinic"}}
        ),
        {
            "apiVersion": "kubevox.dev/v1alpha1",
            "kind": "VoiceAgent",
            "metadata": {"name": "rbac-test", "uid": "00000000-0000-0000-0000-000000000001"},
        },
        "http://prometheus-operated.monitoring.svc:9090",
    ),
    # The operator's default-deny egress policies, as built (IPv4 and IPv6 blocks, in-cluster
    # peers, port ranges), checked by the real API server's validation.
    *agent_egress(
        VoiceAgent.model_validate(
            {
                **VOICE_AGENT,
                "metadata": {"name": "rbac-test", "namespace": "clinic"},
                "spec": {
                    **VOICE_AGENT["spec"],
                    "livekit": {
                        "url": "wss://lk.example.com",
                        "credentialsSecretRef": {"name": "livekit"},
                    },
                },
            }
        ),
        {
            "apiVersion": "kubevox.dev/v1alpha1",
            "kind": "VoiceAgent",
            "metadata": {"name": "rbac-test", "uid": "00000000-0000-0000-0000-000000000001"},
        },
        {},
        {},
        EgressSettings(api_server_cidrs=("10.0.0.1/32",)),
    ),
    _obj(
        "PodDisruptionBudget",
        "policy/v1",
        "rbac-test",
        spec={"maxUnavailable": 1, "selector": {"matchLabels": _LABELS}},
    ),
    _obj(
        "Job",
        "batch/v1",
        "rbac-test-ingest",
        spec={"template": {**_POD, "spec": {**_POD["spec"], "restartPolicy": "Never"}}},
    ),
    _obj(
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        "rbac-test-worker",
        roleRef={
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "kubevox-agent-worker",
        },
        subjects=[{"kind": "ServiceAccount", "name": "rbac-test-worker", "namespace": "clinic"}],
    ),
]


@pytest.mark.parametrize("obj", OPERATOR_WRITES, ids=lambda o: o["kind"])
def test_operator_can_server_side_apply_its_children(
    rbac_applied: Callable[..., Any], obj: dict[str, Any]
) -> None:
    """The real write path (server-side apply, as the operator's field manager), as the
    ServiceAccount, dry-run: admission and RBAC escalation checks included."""
    out = rbac_applied(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=kubevox-operator",
        f"--as={OPERATOR}",
        "-f",
        "-",
        input=json.dumps(obj),
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    "obj",
    [
        # Granting more than kubevox-agent-worker would be privilege escalation.
        _obj(
            "RoleBinding",
            "rbac.authorization.k8s.io/v1",
            "rbac-test-escalate",
            roleRef={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            subjects=[
                {"kind": "ServiceAccount", "name": "rbac-test-worker", "namespace": "clinic"}
            ],
        ),
        _obj("Secret", "v1", "rbac-test-secret", stringData={"k": "v"}),
        _obj("Role", "rbac.authorization.k8s.io/v1", "rbac-test-role", rules=[]),
    ],
    ids=lambda o: f"{o['kind']}-{o['metadata']['name']}",
)
def test_operator_cannot_write_what_it_must_not(
    rbac_applied: Callable[..., Any], obj: dict[str, Any]
) -> None:
    out = rbac_applied(
        "apply",
        "--server-side",
        "--dry-run=server",
        f"--as={OPERATOR}",
        "-f",
        "-",
        input=json.dumps(obj),
    )
    assert out.returncode != 0
    assert "forbidden" in out.stderr.lower(), out.stderr
