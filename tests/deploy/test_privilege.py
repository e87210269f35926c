"""Least privilege, as the real API server enforces it (issue 15, items 6 and 7).

* A worker (a holder of the kubevox-agent-worker role) may change only its own pod's two call
  annotations: the ValidatingAdmissionPolicy of manifests/base/worker-admission.yaml, keyed on
  the pod name a pod-bound ServiceAccount token carries. Requests are made by impersonation,
  with that extra (``Impersonate-Extra-authentication.kubernetes.io%2fpod-name``, which
  kubectl cannot send).
* The Helm chart with ``watchNamespaces``: the operator reads Secrets and writes workloads in
  the watched namespaces only. The rendered chart is applied to a control plane of its own
  (its ClusterRoleBindings would replace the base's in the package's plane).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import MANIFESTS

from .rbac import can_i
from .render import documents, helm_template

pytestmark = pytest.mark.cluster

NS = "clinic"
WORKER_SA = "vap-worker"
WORKER = f"system:serviceaccount:{NS}:{WORKER_SA}"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
COST = "controller.kubernetes.io/pod-deletion-cost"
CALLS = "kubevox.dev/active-calls"
DISPATCHES = "kubevox.dev/dispatches"


# --- requests as someone else, with the extras kubectl cannot send ---------------------------


def _request_as(
    plane: Any,
    method: str,
    path: str,
    body: Any,
    *,
    user: str,
    extra: dict[str, str] | None = None,
    content_type: str = "application/strategic-merge-patch+json",
) -> tuple[int, dict[str, Any]]:
    """One API request as ``user`` (impersonated by the admin), with ``extra`` user info."""
    cfg = yaml.safe_load(plane.kubeconfig.read_text())
    cluster, creds = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    context.load_cert_chain(creds["client-certificate"], creds["client-key"])
    headers = {"Impersonate-User": user, "Content-Type": content_type, "Accept": "application/json"}
    for key, value in (extra or {}).items():
        headers[f"Impersonate-Extra-{urllib.request.quote(key, safe='')}"] = value
    req = urllib.request.Request(
        cluster["server"] + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _patch_pod_as_worker(
    plane: Any, pod: str, patch: dict[str, Any], *, token_pod: str | None
) -> tuple[int, dict[str, Any]]:
    extra = {POD_NAME_EXTRA: token_pod} if token_pod else None
    return _request_as(
        plane, "PATCH", f"/api/v1/namespaces/{NS}/pods/{pod}", patch, user=WORKER, extra=extra
    )


def _annotate(key: str, value: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {key: value}}}


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "vap-test"}},
        "spec": {
            "serviceAccountName": WORKER_SA,
            "containers": [{"name": "agent", "image": "ghcr.io/kubevox/agent-runtime:0.1.0"}],
        },
    }


@pytest.fixture(scope="module")
def workers(cluster: Any, kubectl: Callable[..., Any]) -> Any:
    """The base's RBAC and worker policy applied; one worker ServiceAccount bound to the worker
    role, two pods running as it (Pending: no node, which admission does not care about)."""
    for f in ("rbac.yaml", "worker-admission.yaml"):
        out = kubectl("apply", "--server-side", "-f", str(MANIFESTS / "base" / f))
        assert out.returncode == 0, out.stderr
    objs = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": WORKER_SA, "namespace": NS},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": WORKER_SA, "namespace": NS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "kubevox-agent-worker",
            },
            "subjects": [{"kind": "ServiceAccount", "name": WORKER_SA, "namespace": NS}],
        },
        _pod("vap-a"),
        _pod("vap-b"),
    ]
    out = kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})
    )
    assert out.returncode == 0, out.stderr
    # The policy is enforced once the API server's policy informer has it: wait for a denial
    # of the plainest case (a patch of another pod), or give up and let the tests say so.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _ = _patch_pod_as_worker(cluster, "vap-b", _annotate(COST, "0"), token_pod="vap-a")
        if status == 403:
            break
        time.sleep(0.5)
    return cluster


def test_the_control_plane_serves_validating_admission_policies(
    kubectl: Callable[..., Any],
) -> None:
    """ValidatingAdmissionPolicy is GA and on by default from 1.30; the local API server is
    1.34 and disables no admission plugin (hack/devenv/kubevox_devenv/controlplane.py)."""
    out = kubectl("api-resources", "--api-group=admissionregistration.k8s.io", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert "validatingadmissionpolicies.admissionregistration.k8s.io" in out.stdout.split()
    version = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert (int(version["major"]), int(version["minor"].rstrip("+"))) >= (1, 30)


def test_worker_policy_type_checks(workers: Any, kubectl: Callable[..., Any]) -> None:
    """The API server type-checks every expression against the Pod schema: no warning."""
    deadline = time.monotonic() + 20
    while True:
        vap = json.loads(
            kubectl(
                "get", "validatingadmissionpolicy", "kubevox-agent-worker-pods", "-o", "json"
            ).stdout
        )
        checking = (vap.get("status") or {}).get("typeChecking")
        if checking is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert checking is not None
    assert not checking.get("expressionWarnings"), checking


def test_worker_may_patch_its_own_call_annotations(workers: Any) -> None:
    calls = {COST: "2", CALLS: "2", DISPATCHES: "AD_one,AD_two"}
    patch = {"metadata": {"annotations": calls}}
    status, body = _patch_pod_as_worker(workers, "vap-a", patch, token_pod="vap-a")
    assert status == 200, body
    assert {k: body["metadata"]["annotations"][k] for k in calls} == calls


@pytest.mark.parametrize(
    ("pod", "patch", "why"),
    [
        ("vap-b", _annotate(COST, "-1000"), "only its own pod"),
        (
            "vap-a",
            {"spec": {"containers": [{"name": "agent", "image": "docker.io/evil/miner:1"}]}},
            "spec",
        ),
        ("vap-a", _annotate("sidecar.istio.io/inject", "false"), "only the annotations"),
        ("vap-a", {"metadata": {"labels": {"app": "other"}}}, "labels"),
    ],
    ids=["another-pod", "own-image", "other-annotation", "own-labels"],
)
def test_worker_may_change_nothing_else(
    workers: Any, pod: str, patch: dict[str, Any], why: str
) -> None:
    status, body = _patch_pod_as_worker(workers, pod, patch, token_pod="vap-a")
    assert status == 403, body
    assert why in body.get("message", ""), body


def test_worker_without_a_pod_bound_token_may_patch_no_pod(workers: Any) -> None:
    """A token not bound to a pod (kubectl create token, a leaked legacy token) names no pod."""
    status, body = _patch_pod_as_worker(workers, "vap-a", _annotate(COST, "1"), token_pod=None)
    assert status == 403, body
    assert "its token names none" in body.get("message", ""), body


def test_worker_may_not_read_other_pods(workers: Any, kubectl: Callable[..., Any]) -> None:
    assert not can_i(kubectl, WORKER, "get", "pods", NS)
    assert not can_i(kubectl, WORKER, "list", "pods", NS)
    assert not can_i(kubectl, WORKER, "delete", "pods", NS)


def test_policy_leaves_everyone_else_alone(workers: Any, kubectl: Callable[..., Any]) -> None:
    """Not a worker, not held: a namespace editor and the admin (whose wildcard rights include
    the worker role's marker verb) still change pods as RBAC allows."""
    out = kubectl(
        "create", "rolebinding", "vap-editor", "--clusterrole=edit", "--user=vap-editor", "-n", NS
    )
    assert out.returncode == 0 or "AlreadyExists" in out.stderr, out.stderr
    status, body = _request_as(
        workers,
        "PATCH",
        f"/api/v1/namespaces/{NS}/pods/vap-b",
        {"metadata": {"labels": {"edited": "yes"}}},
        user="vap-editor",
    )
    assert status == 200, body
    out = kubectl("annotate", "pod", "vap-b", "-n", NS, "example.com/by-admin=yes", "--overwrite")
    assert out.returncode == 0, out.stderr


# --- the operator, watching some namespaces --------------------------------------------------

WATCHED = ("voice", "support")
OPERATOR = "system:serviceaccount:kubevox-system:kubevox-operator"


@pytest.fixture(scope="module")
def scoped_plane() -> Iterator[Any]:
    """A control plane with the chart rendered for watchNamespaces=voice,support applied."""
    from kubevox_devenv.controlplane import temporary_control_plane

    text = helm_template([], "--set", f"watchNamespaces={{{','.join(WATCHED)}}}")
    docs = documents(text)
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    rest = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
    with temporary_control_plane("kubevox-scoped-cp-") as plane:
        k = plane.kubectl_run
        for ns in ("kubevox-system", *WATCHED, "elsewhere"):
            assert k("create", "namespace", ns).returncode == 0
        for batch in (crds, rest):
            out = k(
                "apply",
                "--server-side",
                "-f",
                "-",
                input=json.dumps({"apiVersion": "v1", "kind": "List", "items": batch}),
            )
            assert out.returncode == 0, out.stderr
            wait = k("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            assert wait.returncode == 0, wait.stderr
        yield plane


def test_watch_namespaces_chart_renders_no_cluster_wide_secret_access() -> None:
    text = helm_template([], "--set", f"watchNamespaces={{{','.join(WATCHED)}}}")
    docs = documents(text)
    bindings = {
        (d["kind"], d["metadata"].get("namespace", ""), d["roleRef"]["name"])
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
    }
    assert ("ClusterRoleBinding", "", "kubevox-operator-namespaced") not in bindings
    for ns in WATCHED:
        assert ("RoleBinding", ns, "kubevox-operator-namespaced") in bindings
    cluster_rules = next(
        d["rules"]
        for d in docs
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "kubevox-operator"
    )
    assert not any("secrets" in r["resources"] for r in cluster_rules)


def test_watch_namespaces_chart_refuses_globs() -> None:
    from tests.support.tools import CHART, helm, run

    proc = run([helm(), "template", "kubevox", CHART, "--set", "watchNamespaces={team-*}"])
    assert proc.returncode != 0
    assert "is a glob" in proc.stderr


def test_operator_reads_secrets_only_in_watched_namespaces(
    scoped_plane: Any,
) -> None:
    k = scoped_plane.kubectl_run
    denied = k("get", "secrets", "-n", "kube-system", f"--as={OPERATOR}")
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower(), denied.stderr
    allowed = k("get", "secret", "nothing-here", "-n", "voice", f"--as={OPERATOR}")
    assert "NotFound" in allowed.stderr, allowed.stderr  # authorized; the Secret just is not there
    for ns in WATCHED:
        assert can_i(k, OPERATOR, "get", "secrets", ns)
    for ns in ("kube-system", "default", "elsewhere", "kubevox-system"):
        assert not can_i(k, OPERATOR, "get", "secrets", ns), ns


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("patch", "deployments.apps"),
        ("create", "jobs.batch"),
        ("list", "voiceagents.kubevox.dev"),
        ("watch", "knowledgebases.kubevox.dev"),
        ("patch", "voiceagents.kubevox.dev/status"),
        ("create", "networkpolicies.networking.k8s.io"),
        ("list", "pods"),
        ("create", "events"),
    ],
)
def test_operator_works_only_in_watched_namespaces(
    scoped_plane: Any, verb: str, resource: str
) -> None:
    k = scoped_plane.kubectl_run
    for ns in WATCHED:
        assert can_i(k, OPERATOR, verb, resource, ns), ns
    for ns in ("kube-system", "elsewhere"):
        assert not can_i(k, OPERATOR, verb, resource, ns), ns
    assert not can_i(k, OPERATOR, verb, resource, "")  # all namespaces


def test_operator_keeps_its_cluster_scoped_reads(scoped_plane: Any) -> None:
    k = scoped_plane.kubectl_run
    assert can_i(k, OPERATOR, "watch", "customresourcedefinitions.apiextensions.k8s.io", "")
    assert can_i(k, OPERATOR, "list", "namespaces", "")
    assert can_i(k, OPERATOR, "patch", "kopfpeerings.kopf.dev", "voice")


def test_operator_binds_the_worker_role_only_in_watched_namespaces(
    scoped_plane: Any,
) -> None:
    def bind(ns: str) -> bool:
        return can_i(
            k,
            OPERATOR,
            "bind",
            "clusterroles.rbac.authorization.k8s.io",
            ns,
            "kubevox-agent-worker",
        )

    k = scoped_plane.kubectl_run
    assert bind("voice")
    assert not bind("kube-system")


def test_operator_reconciles_in_a_watched_namespace_with_only_these_rights(
    scoped_plane: Any, tmp_path: Path
) -> None:
    """The real operator, logged in as its ServiceAccount with the chart's watchNamespaces
    RBAC: it lists, watches and writes in a watched namespace without any cluster-wide right
    on tenants' objects."""
    from tests.support.kube import wait_for
    from tests.support.objects import secrets, voice_agent
    from tests.support.operator_process import OperatorProcess, service_account_kubeconfig

    k = scoped_plane.kubectl_run
    token = k("create", "token", "kubevox-operator", "-n", "kubevox-system").stdout.strip()
    assert token
    config = service_account_kubeconfig(
        scoped_plane.kubeconfig, token, tmp_path / "operator.kubeconfig"
    )
    items = [*secrets("voice"), voice_agent("ava", "voice")]
    out = k(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    assert out.returncode == 0, out.stderr
    op = OperatorProcess(config, tmp_path, *(f"--namespace={ns}" for ns in WATCHED))
    op.start()
    try:
        wait_for(
            "the agent's Deployment and egress policy",
            lambda: (
                k(
                    "get", "deployment/ava", "networkpolicy/ava-worker-egress", "-n", "voice"
                ).returncode
                == 0
            ),
            timeout=60,
        )
        status = json.loads(k("get", "voiceagent", "ava", "-n", "voice", "-o", "json").stdout)
        assert status.get("status", {}).get("conditions"), status
    finally:
        op.stop()
    records = op.log_records()
    assert any("applied Deployment voice/ava" in str(r.get("message")) for r in records)
    denied = [r for r in records if "forbidden" in str(r).lower()]
    assert not denied, denied[:3]
