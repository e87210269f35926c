"""Operator qualities: restart convergence, idle resync writes nothing, RBAC, metrics."""

from __future__ import annotations

import time
import urllib.request

import pytest
import yaml

from tests.support.kube import Kubectl, condition, wait_for
from tests.support.objects import secrets, voice_agent
from tests.support.operator_process import SA_USER, OperatorProcess, audit_writes, wait_quiet

from .conftest import REPO, RESYNC_SECONDS

pytestmark = pytest.mark.cluster


def ours(writes: list[dict], ns: str) -> list[dict]:
    """Writes about this test's namespace (earlier tests' namespaces are being torn down, and
    the operator rightly repairs what the namespace controller removes before the agent)."""
    return [w for w in writes if w["objectRef"].get("namespace") in (ns, None)]


def settled(k: Kubectl, ns: str, names: list[str]) -> bool:
    for n in names:
        va = k.get("voiceagent", n, ns)
        if (
            not va
            or va.get("status", {}).get("observedGeneration") != va["metadata"]["generation"]
            or not k.get("deployment", n, ns)
        ):
            return False
    return True


def test_killed_mid_way_and_restarted_converges_without_duplicates(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
):
    kubectl.apply(secrets(namespace))
    names = [f"a{i}" for i in range(6)]
    kubectl.apply([voice_agent(n, namespace) for n in names])
    time.sleep(0.4)
    operator.kill()  # SIGKILL, mid-way through
    operator.start()
    wait_for("all agents reconciled", lambda: settled(kubectl, namespace, names), timeout=40)
    deps = kubectl.list("deployments", namespace)
    assert sorted(d["metadata"]["name"] for d in deps) == names
    for kind in ("hpa", "configmaps", "services", "pdb", "rolebindings"):
        assert len(
            kubectl.list(kind, namespace, "app.kubernetes.io/managed-by=kubevox-operator")
        ) == len(names), kind
    rs = kubectl.list("replicasets", namespace)
    assert len(rs) == len(names)  # no pod-template flapping across the restart


def test_idle_resync_and_restart_make_zero_writes(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, control_plane
):
    kubectl.apply(secrets(namespace))
    kubectl.apply([voice_agent(f"b{i}", namespace) for i in range(3)])
    wait_for("agents reconciled", lambda: settled(kubectl, namespace, ["b0", "b1", "b2"]))
    wait_quiet(control_plane.audit_log, SA_USER, quiet=RESYNC_SECONDS + 1)
    start = time.time()
    time.sleep(2 * RESYNC_SECONDS + 1)  # two full resyncs of every object
    writes = ours(audit_writes(control_plane.audit_log, SA_USER, start), namespace)
    assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]

    operator.stop()  # graceful; then a fresh process re-lists everything
    operator.start()
    start = time.time()
    time.sleep(RESYNC_SECONDS + 3)
    writes = ours(audit_writes(control_plane.audit_log, SA_USER, start), namespace)
    assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]
    assert condition(kubectl.get("voiceagent", "b0", namespace), "Progressing")


def test_operator_runs_as_its_service_account_with_no_wildcard(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, control_plane
):
    # Every cluster test runs the operator as this ServiceAccount; here its writes are seen.
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("c", namespace))
    wait_for("agent reconciled", lambda: settled(kubectl, namespace, ["c"]))
    users = {w["user"]["username"] for w in audit_writes(control_plane.audit_log, SA_USER, 0)}
    assert users == {SA_USER}
    rules = [
        d
        for d in yaml.safe_load_all((REPO / "manifests/base/rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    ]
    for role in rules:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
    as_sa = ("--as", SA_USER)

    def can(*args: str) -> bool:
        return kubectl("auth", "can-i", *args, *as_sa, check=False).strip() == "yes"

    assert can("patch", "deployments", "-n", namespace)
    assert can("get", "secrets", "-n", namespace)
    assert not can("list", "secrets", "-n", namespace)
    # Deletes: only what the spec can drop (the web gateway's objects, the other autoscaler,
    # superseded Jobs), never a tenant's ConfigMaps, Secrets or pods.
    assert can("delete", "deployments", "-n", namespace)
    assert not can("delete", "configmaps", "-n", namespace)
    assert not can("delete", "secrets", "-n", namespace)
    assert not can("delete", "pods", "-n", namespace)
    assert not can("update", "voiceagents")
    assert not can("create", "pods", "-n", namespace)
    # The ServiceMonitor CRD appearing at run time is watched, read only.
    assert can("watch", "customresourcedefinitions.apiextensions.k8s.io")
    assert not can("patch", "customresourcedefinitions.apiextensions.k8s.io")


def test_operator_metrics_and_liveness(operator: OperatorProcess, namespace: str, kubectl: Kubectl):
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("m", namespace))
    wait_for("agent reconciled", lambda: settled(kubectl, namespace, ["m"]))
    body = (
        urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    assert 'kubevox_operator_reconciles_total{kind="VoiceAgent",outcome="changed"}' in body
    assert "kubevox_operator_reconcile_duration_seconds_bucket" in body
    assert 'kubevox_operator_managed_objects{kind="Deployment"}' in body
    assert all(r.get("level") != "raw" for r in operator.log_records())  # JSON lines only
