"""The worker's own pod annotations, written as the worker's ServiceAccount through the RBAC the
operator grants it and the worker admission policy (manifests/base/worker-admission.yaml),
with tokens bound to each pod as the kubelet mounts them, against the real API server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubevox_api.contract import (
    ACTIVE_CALLS_ANNOTATION,
    DELETION_COST_ANNOTATION,
    DISPATCHES_ANNOTATION,
    WORKER_CLUSTER_ROLE,
)
from kubevox_devenv.controlplane import ControlPlane

from agent_runtime.pod_annotations import PodCallsAnnotator

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
NS = "pod-annotations"


def _worker_role() -> dict[str, object]:
    docs = yaml.safe_load_all((REPO / "manifests/base/rbac.yaml").read_text())
    return next(d for d in docs if d and d["metadata"]["name"] == WORKER_CLUSTER_ROLE)


@pytest.fixture(scope="module")
def worker_api(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[client.CoreV1Api, client.CoreV1Api]]:
    """(API as the worker's ServiceAccount, API as the admin), with one pod per worker."""
    k = control_plane.kubectl_run
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        _worker_role(),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "w", "namespace": NS}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "w", "namespace": NS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": WORKER_CLUSTER_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "w", "namespace": NS}],
        },
    ] + [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"worker-{i}", "namespace": NS},
            "spec": {"serviceAccountName": "w", "containers": [{"name": "w", "image": "x"}]},
        }
        for i in (0, 1)
    ]
    objects += list(yaml.safe_load_all((REPO / "manifests/base/worker-admission.yaml").read_text()))
    out = k(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    assert out.returncode == 0, out.stderr
    clients = [_client_as(control_plane, tmp_path_factory, pod) for pod in ("worker-0", "worker-1")]
    as_admin = config.new_client_from_config(str(control_plane.kubeconfig))
    _wait_for_the_policy(client.CoreV1Api(clients[0]))
    yield client.CoreV1Api(clients[0]), client.CoreV1Api(as_admin), client.CoreV1Api(clients[1])
    for c in (*clients, as_admin):
        c.close()
    k("delete", "namespace", NS, "--wait=false")


def _client_as(
    plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory, pod: str
) -> client.ApiClient:
    """An API client with ServiceAccount w's token bound to ``pod`` (what the kubelet mounts)."""
    token = plane.kubectl_run(
        "create", "token", "w", "-n", NS, "--bound-object-kind=Pod", f"--bound-object-name={pod}"
    ).stdout.strip()
    assert token
    cfg = yaml.safe_load(plane.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": token}
    path = tmp_path_factory.mktemp("worker") / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return config.new_client_from_config(str(path))


def _wait_for_the_policy(as_worker_0: client.CoreV1Api) -> None:
    """A new ValidatingAdmissionPolicy is enforced once the API server's informer has it."""
    body = {"metadata": {"annotations": {DELETION_COST_ANNOTATION: "0"}}}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            as_worker_0.patch_namespaced_pod("worker-1", NS, body)
        except client.ApiException as exc:
            if exc.status == 403:
                return
        time.sleep(0.5)


def _annotations(admin: client.CoreV1Api, pod: str) -> dict[str, str]:
    return dict(admin.read_namespaced_pod(pod, NS).metadata.annotations or {})


Clients = tuple[client.CoreV1Api, client.CoreV1Api, client.CoreV1Api]


def test_calls_reach_the_pod_annotations(worker_api: Clients) -> None:
    as_worker, admin, _ = worker_api
    annotator = PodCallsAnnotator(as_worker, "worker-0", NS)
    assert annotator.update(3, ["AD_b", "AD_a", ""])  # a job dispatched without an id
    assert _annotations(admin, "worker-0")[DELETION_COST_ANNOTATION] == "3"
    assert _annotations(admin, "worker-0")[ACTIVE_CALLS_ANNOTATION] == "3"
    assert _annotations(admin, "worker-0")[DISPATCHES_ANNOTATION] == "AD_a,AD_b"
    version = admin.read_namespaced_pod("worker-0", NS).metadata.resource_version
    assert not annotator.update(3, ["AD_a", "AD_b", ""]), "unchanged calls must not write"
    assert admin.read_namespaced_pod("worker-0", NS).metadata.resource_version == version
    assert annotator.update(3, ["AD_a", "AD_c", ""]), "one call ended, another began"
    assert _annotations(admin, "worker-0")[DISPATCHES_ANNOTATION] == "AD_a,AD_c"
    assert annotator.update(0)
    assert _annotations(admin, "worker-0")[DELETION_COST_ANNOTATION] == "0"
    assert _annotations(admin, "worker-0")[DISPATCHES_ANNOTATION] == ""


def test_worker_rights_end_at_patching_its_own_pod(worker_api: Clients) -> None:
    as_worker, admin, _ = worker_api
    before = _annotations(admin, "worker-1")
    assert not PodCallsAnnotator(as_worker, "worker-1", NS).update(7)
    assert _annotations(admin, "worker-1") == before
    with pytest.raises(client.ApiException) as denied:
        as_worker.patch_namespaced_pod(
            "worker-0", NS, {"spec": {"containers": [{"name": "w", "image": "evil:1"}]}}
        )
    assert denied.value.status == 403
    with pytest.raises(client.ApiException) as denied:
        as_worker.read_namespaced_pod("worker-1", NS)
    assert denied.value.status == 403
    with pytest.raises(client.ApiException) as denied:
        as_worker.delete_namespaced_pod("worker-1", NS)
    assert denied.value.status == 403
    with pytest.raises(client.ApiException) as denied:
        as_worker.list_namespaced_secret(NS)
    assert denied.value.status == 403


def test_a_denied_write_is_reported_once_and_retried(
    worker_api: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    _, admin, as_worker = worker_api  # worker-1's token
    annotator = PodCallsAnnotator(as_worker, "no-such-pod", NS)
    assert not annotator.update(2)
    assert not annotator.update(2)
    warnings = [r for r in caplog.records if r.name == "kubevox.pod"]
    assert len(warnings) == 1
    annotator.pod = "worker-1"  # the pod becomes reachable: the next update goes through
    assert annotator.update(2)
    assert _annotations(admin, "worker-1")[ACTIVE_CALLS_ANNOTATION] == "2"
