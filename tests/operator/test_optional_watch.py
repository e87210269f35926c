"""The operator's own watch of an optional kind (optional_watch.py) on the real API server, with
the operator's ServiceAccount: it sees the operator's children of that kind, outlives the
deletion of their CRD under a live watch (kopf's watch died of that 404), and follows the CRD
when it comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubevox_api import contract
from kubevox_operator.kube import Kube
from kubevox_operator.optional_watch import OptionalWatches

from tests.support.kube import Kubectl
from tests.support.objects import service_monitor_crd
from tests.support.waits import until

pytestmark = pytest.mark.cluster

CRD = "servicemonitors.monitoring.coreos.com"


def service_monitor(name: str, ns: str, *, ours: bool = True) -> dict[str, Any]:
    labels = {contract.LABEL_MANAGED_BY: contract.MANAGED_BY} if ours else {}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"selector": {}, "endpoints": [{"port": "metrics"}]},
    }


async def install_crd(kubectl: Kubectl) -> None:
    await asyncio.to_thread(kubectl.apply, service_monitor_crd())
    await asyncio.to_thread(kubectl, "wait", "--for=condition=Established", f"crd/{CRD}")


async def test_the_watch_outlives_its_crd_and_follows_it_back(
    kubectl: Kubectl,
    namespace: str,
    operator_kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(operator_kubeconfig))
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert info is not None
    kube = Kube(info)
    seen: list[tuple[str | None, str]] = []
    kinds: set[str] = set()
    ready = asyncio.Event()
    ready.set()
    watches = OptionalWatches(
        lambda: kube,
        lambda _kind, event, obj: (
            seen.append((event, obj["metadata"]["name"])),
            kinds.add(obj.get("kind", "")),
        ),
        ready,
        retry_seconds=0.5,
        timeout_seconds=5,  # several watches end and resume during the test
    )
    try:
        await install_crd(kubectl)
        await asyncio.to_thread(kubectl.apply, service_monitor("listed", namespace))
        watches.follow({"ServiceMonitor"})
        await until("the listed one", lambda: (None, "listed") in seen, within=20)
        await asyncio.to_thread(kubectl.apply, service_monitor("ours", namespace))
        await asyncio.to_thread(kubectl.apply, service_monitor("theirs", namespace, ours=False))
        await until("ours seen", lambda: ("ADDED", "ours") in seen, within=20)
        assert kinds == {"ServiceMonitor"}  # listed items get the kind a watch's objects carry

        (task,) = watches._tasks["ServiceMonitor"]
        await asyncio.to_thread(kubectl, "delete", "crd", CRD, "--wait=true")
        await asyncio.sleep(3)  # the watch's stream ended, and its reconnects got 404s
        assert not task.done(), task  # no exception ended it (kopf's was fatal)

        await install_crd(kubectl)  # back: listed and watched again
        await asyncio.to_thread(kubectl.apply, service_monitor("again", namespace))
        await until("the new one seen", lambda: any(n == "again" for _, n in seen), within=30)
        assert all(name != "theirs" for _, name in seen)  # only the operator's children

        watches.follow(set())  # the CRD's deletion seen: the watch stops
        await asyncio.sleep(0)
        assert task.cancelled() or task.done()
        assert watches.watched == frozenset()
    finally:
        await watches.stop()
        await kube.close()
        await asyncio.to_thread(kubectl, "delete", "crd", CRD, "--ignore-not-found", "--wait=true")
