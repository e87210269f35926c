"""spec.scaling.autoscaler on the real control plane with KEDA's real ScaledObject CRD (from its
Go module, hack/tools/fetch-third-party.sh): keda makes a ScaledObject and no HPA, switching
deletes the other kind's object, only one the agent owns, and keda without its CRD or without a
Prometheus URL is reported, with no HPA made instead. No KEDA runs: its status is written here,
as a kubelet's is in the other tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubevox_operator.builders.autoscaling import calls_query

from tests.support.kube import Kubectl, condition, wait_for
from tests.support.objects import secrets, voice_agent
from tests.support.operator_process import SA_USER, OperatorProcess, audit_writes
from tests.support.tools import third_party

from .conftest import PROMETHEUS_URL, RESYNC_SECONDS

pytestmark = pytest.mark.cluster

CRD = "scaledobjects.keda.sh"
SCALING = {
    "minReplicas": 0,
    "maxReplicas": 6,
    "targetCallsPerPod": 3,
    "maxCallsPerPod": 4,
    "scaleDownStabilizationSeconds": 120,
}


def logged(operator: OperatorProcess, since: int, *messages: str) -> bool:
    return any(r.get("message") in messages for r in operator.log_records()[since:])


def serving(operator: OperatorProcess, since: int) -> bool:
    """The operator knows the CRD is served: noticed at run time, or found when it connected."""
    return logged(
        operator, since, "ScaledObject CRD present", "connected; ScaledObject CRD present"
    )


def degraded(k: Kubectl, name: str, ns: str, reason: str) -> dict | None:
    c = condition(k.get("voiceagent", name, ns), "Degraded")
    return c if (c.get("status"), c.get("reason")) == ("True", reason) else None


def set_autoscaler(k: Kubectl, name: str, ns: str, autoscaler: str) -> None:
    k(
        "patch",
        "voiceagent",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        f'{{"spec":{{"scaling":{{"autoscaler":"{autoscaler}"}}}}}}',
    )


def operator_writes(control_plane, ns: str, resource: str, since: float) -> list[dict]:
    return [
        w
        for w in audit_writes(control_plane.audit_log, SA_USER, since)
        if w["objectRef"].get("namespace") == ns and w["objectRef"].get("resource") == resource
    ]


@pytest.fixture
def keda_crd(kubectl: Kubectl, operator: OperatorProcess) -> Iterator[Path]:
    """KEDA's ScaledObject CRD, installed while the operator runs, and removed after."""
    path = third_party() / "crds" / "keda.sh_scaledobjects.yaml"
    mark = len(operator.log_records())
    kubectl("apply", "--server-side", "-f", str(path))
    wait_for("the operator to notice", lambda: serving(operator, mark))
    yield path
    mark = len(operator.log_records())
    kubectl("delete", "crd", CRD, "--wait=true", check=False)
    wait_for("the operator to notice", lambda: logged(operator, mark, "ScaledObject CRD gone"))


def test_keda_makes_a_scaled_object_and_switching_replaces_the_other_kind(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, keda_crd: Path, control_plane
):
    ns = namespace
    start = time.time()
    kubectl.apply(secrets(ns))
    kubectl.apply(voice_agent("kd", ns, scaling={**SCALING, "autoscaler": "keda"}))
    so = wait_for("its ScaledObject", lambda: kubectl.get("scaledobject", "kd", ns))
    va = kubectl.get("voiceagent", "kd", ns)
    assert va
    (ref,) = so["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"]) == ("VoiceAgent", va["metadata"]["uid"])
    spec = so["spec"]
    # What the operator sent is what KEDA's schema kept (no field pruned as unknown).
    assert spec["scaleTargetRef"]["name"] == "kd"
    assert kubectl.get("deployment", "kd", ns)
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 6)
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (5, 120)
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 120
    assert spec["triggers"] == [
        {
            "type": "prometheus",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": PROMETHEUS_URL,
                "query": calls_query(ns, "kd"),
                "threshold": "3",
            },
        }
    ]
    wait_for(
        "the agent reconciled",
        lambda: (
            (v := kubectl.get("voiceagent", "kd", ns))
            and v.get("status", {}).get("observedGeneration") == v["metadata"]["generation"]
        ),
    )
    assert kubectl.get("hpa", "kd", ns) is None
    assert operator_writes(control_plane, ns, "horizontalpodautoscalers", start) == []

    # KEDA reports a failing trigger: the agent is Degraded, with KEDA's own words.
    kubectl.patch_status(
        "scaledobject",
        "kd",
        ns,
        {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "TriggerError",
                    "message": "prometheus unreachable",
                }
            ]
        },
    )
    c = wait_for("AutoscalerUnable", lambda: degraded(kubectl, "kd", ns, "AutoscalerUnable"))
    assert "ScaledObject TriggerError: prometheus unreachable" in c["message"]

    # KEDA's own HPA is KEDA's: the operator never touches it, whatever the switches.
    kubectl.apply(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "keda-hpa-kd", "namespace": ns},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "kd"},
                "maxReplicas": 6,
            },
        }
    )

    set_autoscaler(kubectl, "kd", ns, "hpa")
    hpa = wait_for("its HPA", lambda: kubectl.get("hpa", "kd", ns))
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == va["metadata"]["uid"]
    wait_for("the ScaledObject deleted", lambda: kubectl.get("scaledobject", "kd", ns) is None)

    set_autoscaler(kubectl, "kd", ns, "keda")
    wait_for("the ScaledObject back", lambda: kubectl.get("scaledobject", "kd", ns))
    wait_for("the HPA deleted", lambda: kubectl.get("hpa", "kd", ns) is None)

    assert kubectl.get("hpa", "keda-hpa-kd", ns)
    touched = [
        w
        for w in operator_writes(control_plane, ns, "horizontalpodautoscalers", start)
        if w["objectRef"].get("name") != "kd"
    ]
    assert touched == []


def test_a_namesake_the_agent_does_not_own_is_never_deleted(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, keda_crd: Path
):
    ns = namespace
    kubectl.apply(secrets(ns))
    # Someone else's HPA, labelled as if it were the operator's (so the operator sees it),
    # with the name the agent's own would have, but no owner reference to the agent.
    kubectl.apply(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {
                "name": "kf",
                "namespace": ns,
                "labels": {
                    "app.kubernetes.io/managed-by": "kubevox-operator",
                    "kubevox.dev/voiceagent": "kf",
                },
            },
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "maxReplicas": 2,
            },
        }
    )
    kubectl.apply(voice_agent("kf", ns, scaling={**SCALING, "autoscaler": "keda"}))
    wait_for("its ScaledObject", lambda: kubectl.get("scaledobject", "kf", ns))
    time.sleep(RESYNC_SECONDS + 1)  # a resync's reconcile too
    hpa = kubectl.get("hpa", "kf", ns)
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"]["name"] == "x"


def test_keda_without_its_crd_is_reported_and_no_hpa_is_made(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, control_plane
):
    ns = namespace
    assert kubectl.get("crd", CRD, "") is None
    start = time.time()
    kubectl.apply(secrets(ns))
    kubectl.apply(voice_agent("nocrd", ns, scaling={**SCALING, "autoscaler": "keda"}))
    c = wait_for(
        "AutoscalerUnavailable",
        lambda: degraded(kubectl, "nocrd", ns, "AutoscalerUnavailable"),
    )
    assert "ScaledObject CRD" in c["message"]
    assert "Prometheus URL" not in c["message"]  # the session's operator has one
    assert kubectl.get("deployment", "nocrd", ns)  # the rest is reconciled
    wait_for(
        "its Warning Event",
        lambda: [
            e
            for e in kubectl.list("events", ns)
            if (e["type"], e["reason"], e["involvedObject"]["name"])
            == ("Warning", "AutoscalerUnavailable", "nocrd")
        ],
    )
    assert kubectl.get("hpa", "nocrd", ns) is None
    assert operator_writes(control_plane, ns, "horizontalpodautoscalers", start) == []


def test_keda_without_a_prometheus_url_is_reported_and_no_hpa_is_made(
    kubectl: Kubectl,
    namespace: str,
    operator: OperatorProcess,
    keda_crd: Path,
    control_plane,
    tmp_path: Path,
):
    ns = namespace
    # The session's operator has a Prometheus URL: this one, in its place for the test, has none.
    operator.stop()
    extra = list(operator.extra)
    i = extra.index("--prometheus-url")
    bare = OperatorProcess(operator.kubeconfig, tmp_path, *extra[:i], *extra[i + 2 :])
    bare.start()
    try:
        start = time.time()
        kubectl.apply(secrets(ns))
        kubectl.apply(voice_agent("nourl", ns, scaling={**SCALING, "autoscaler": "keda"}))
        c = wait_for(
            "AutoscalerUnavailable",
            lambda: degraded(kubectl, "nourl", ns, "AutoscalerUnavailable"),
        )
        assert "--prometheus-url" in c["message"]
        assert "CRD" not in c["message"]  # it is served
        assert kubectl.get("deployment", "nourl", ns)
        assert kubectl.get("scaledobject", "nourl", ns) is None
        assert kubectl.get("hpa", "nourl", ns) is None
        assert operator_writes(control_plane, ns, "horizontalpodautoscalers", start) == []
    finally:
        bare.stop()
        mark = len(operator.log_records())
        operator.start()
        wait_for("the session's operator back", lambda: serving(operator, mark))
