"""The worker's own pod annotations, written as the worker's ServiceAccount through the RBAC the
operator grants it, against the real API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubevox_devenv.controlplane import ControlPlane
from kubevox_operator.contract import (
    ACTIVE_CALLS_ANNOTATION,
    DELETION_COST_ANNOTATION,
    WORKER_CLUSTER_ROLE,
)

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
    out = k(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    assert out.returncode == 0, out.stderr
    token = k("create", "token", "w", "-n", NS).stdout.strip()
    cfg = yaml.safe_load(control_plane.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": token}
    path = tmp_path_factory.mktemp("worker") / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    as_worker = config.new_client_from_config(str(path))
    as_admin = config.new_client_from_config(str(control_plane.kubeconfig))
    yield client.CoreV1Api(as_worker), client.CoreV1Api(as_admin)
    as_worker.close()
    as_admin.close()
    k("delete", "namespace", NS, "--wait=false")


def _annotations(admin: client.CoreV1Api, pod: str) -> dict[str, str]:
    return dict(admin.read_namespaced_pod(pod, NS).metadata.annotations or {})


def test_calls_reach_the_pod_annotations(
    worker_api: tuple[client.CoreV1Api, client.CoreV1Api],
) -> None:
    as_worker, admin = worker_api
    annotator = PodCallsAnnotator(as_worker, "worker-0", NS)
    assert annotator.update(3)
    assert _annotations(admin, "worker-0")[DELETION_COST_ANNOTATION] == "3"
    assert _annotations(admin, "worker-0")[ACTIVE_CALLS_ANNOTATION] == "3"
    version = admin.read_namespaced_pod("worker-0", NS).metadata.resource_version
    assert not annotator.update(3), "unchanged calls must not write"
    assert admin.read_namespaced_pod("worker-0", NS).metadata.resource_version == version
    assert annotator.update(0)
    assert _annotations(admin, "worker-0")[DELETION_COST_ANNOTATION] == "0"


def test_worker_rights_end_at_get_and_patch_pods(
    worker_api: tuple[client.CoreV1Api, client.CoreV1Api],
) -> None:
    as_worker, _ = worker_api
    with pytest.raises(client.ApiException) as denied:
        as_worker.delete_namespaced_pod("worker-1", NS)
    assert denied.value.status == 403
    with pytest.raises(client.ApiException) as denied:
        as_worker.list_namespaced_secret(NS)
    assert denied.value.status == 403


def test_a_denied_write_is_reported_once_and_retried(
    worker_api: tuple[client.CoreV1Api, client.CoreV1Api],
    caplog: pytest.LogCaptureFixture,
) -> None:
    as_worker, admin = worker_api
    annotator = PodCallsAnnotator(as_worker, "no-such-pod", NS)
    assert not annotator.update(2)
    assert not annotator.update(2)
    warnings = [r for r in caplog.records if r.name == "kubevox.pod"]
    assert len(warnings) == 1
    annotator.pod = "worker-1"  # the pod becomes reachable: the next update goes through
    assert annotator.update(2)
    assert _annotations(admin, "worker-1")[ACTIVE_CALLS_ANNOTATION] == "2"
