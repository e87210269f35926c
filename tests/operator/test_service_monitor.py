"""The ServiceMonitor CRD installed and removed while the operator runs (no restart)."""

from __future__ import annotations

import time

import pytest

from tests.support.kube import Kubectl, condition, delete_and_wait_recreated, wait_for
from tests.support.objects import secrets, service_monitor_crd, voice_agent
from tests.support.operator_process import SA_USER, OperatorProcess, audit_writes, wait_quiet

pytestmark = pytest.mark.cluster

CRD = "servicemonitors.monitoring.coreos.com"


def logged(operator: OperatorProcess, message: str, since: int) -> bool:
    return any(r.get("message") == message for r in operator.log_records()[since:])


def test_service_monitor_follows_its_crd_at_runtime(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, control_plane
):
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("mon", namespace))
    wait_for("agent reconciled", lambda: kubectl.get("deployment", "mon", namespace))
    assert kubectl.get("crd", CRD, "") is None  # absent when the operator started
    mark = len(operator.log_records())
    try:
        kubectl.apply(service_monitor_crd())
        sm = wait_for("its ServiceMonitor", lambda: kubectl.get("servicemonitor", "mon", namespace))
        assert logged(operator, "ServiceMonitor CRD present", mark)
        assert sm["metadata"]["ownerReferences"][0]["name"] == "mon"
        assert sm["spec"]["endpoints"][0]["port"] == "metrics"
        assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "mon"

        # Now watched like every child: deleted behind the operator's back, it comes back.
        delete_and_wait_recreated(kubectl, "servicemonitor", "mon", namespace)
        # An idle resync neither re-applies it nor reads it as missing (once the HPA has been
        # evaluated: its first conditions are a real status change of the agent).
        wait_for(
            "the autoscaler evaluated",
            lambda: (
                condition(kubectl.get("hpa", "mon", namespace), "ScalingActive")
                and condition(kubectl.get("voiceagent", "mon", namespace), "Degraded").get("reason")
                == "AutoscalerInactive"
            ),
            timeout=60,
        )
        wait_quiet(control_plane.audit_log, SA_USER, quiet=4)
        start = time.time()
        time.sleep(7)
        writes = [
            w
            for w in audit_writes(control_plane.audit_log, SA_USER, start)
            if w["objectRef"].get("namespace") == namespace
        ]
        assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]
    finally:
        mark = len(operator.log_records())
        kubectl("delete", "crd", CRD, "--wait=true", check=False)
    wait_for("the operator to notice", lambda: logged(operator, "ServiceMonitor CRD gone", mark))
    # The CRD's watch stream ended with it: the operator stopped that watch rather than dying
    # on a reconnect's 404 (which kopf treated as fatal; see optional_watch.py).
    time.sleep(4)
    assert operator.proc is not None
    assert operator.proc.poll() is None, "the operator exited"
    assert not [r for r in operator.log_records()[mark:] if r.get("level") == "error"]
    # Without the CRD, a new agent is reconciled whole again, and no ServiceMonitor is tried.
    kubectl.apply(voice_agent("after", namespace))
    wait_for(
        "agent reconciled",
        lambda: (
            (va := kubectl.get("voiceagent", "after", namespace))
            and va.get("status", {}).get("observedGeneration") == va["metadata"]["generation"]
        ),
    )
    complaints = [
        r
        for r in operator.log_records()[mark:]
        if str(r.get("logger", "")).startswith("kubevox") and r.get("level") != "info"
    ]
    assert complaints == []  # no failed apply of a ServiceMonitor while its CRD goes
