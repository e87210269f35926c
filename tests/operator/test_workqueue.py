"""The work queue's lanes and the controller's intake from the watches: no cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubevox_operator.builders import OperatorDefaults
from kubevox_operator.controller import Controller
from kubevox_operator.intake import serves, status_only
from kubevox_operator.settings import Settings
from kubevox_operator.workqueue import Key, WorkQueue

Obj = dict[str, Any]


async def test_urgent_keys_run_before_the_backlog_and_duplicates_run_once():
    ran: list[Key] = []
    gate, done = asyncio.Event(), asyncio.Event()

    async def reconcile(key: Key) -> None:
        await gate.wait()
        ran.append(key)
        if len(ran) == 4:
            done.set()

    q = WorkQueue(reconcile, workers=1)
    q.start()
    q.add(("VoiceAgent", "ns", "busy"))  # taken at once, then blocks the only worker
    await asyncio.sleep(0)
    for name in ("old1", "old2", "old1"):
        q.add(("VoiceAgent", "ns", name))
    q.add(("VoiceAgent", "ns", "new"), urgent=True)
    q.add(("VoiceAgent", "ns", "old2"), urgent=True)  # promoted, still queued once
    gate.set()
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.05)  # nothing else runs
    await q.stop()
    assert [k[2] for k in ran] == ["busy", "new", "old2", "old1"]


def test_serves_needs_an_established_crd_serving_the_version():
    crd: Obj = {
        "spec": {"versions": [{"name": "v1", "served": True}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    }
    assert serves(crd, "v1")
    assert not serves(crd, "v2")
    assert not serves({**crd, "status": {}}, "v1")  # just created, not served yet
    assert not serves({**crd, "spec": {"versions": [{"name": "v1", "served": False}]}}, "v1")
    assert not serves(None, "v1")
    assert not serves({**crd, "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}, "v1")


def test_status_only_changes_are_told_from_drift():
    dep: Obj = {"metadata": {"generation": 1, "labels": {"a": "1"}}, "status": {}}
    assert status_only(dep, {**dep, "status": {"replicas": 1}})
    assert not status_only(dep, {"metadata": {"generation": 2, "labels": {"a": "1"}}})
    assert not status_only(dep, {"metadata": {"generation": 1, "labels": {"a": "2"}}})
    assert not status_only(None, dep)  # new to the cache
    assert not status_only({"metadata": {}}, {"metadata": {}})  # no generation: any change


def agent(rv: str, generation: int = 1, observed: int | None = None) -> Obj:
    meta = {"name": "va", "namespace": "ns", "resourceVersion": rv, "generation": generation}
    return {
        "metadata": meta,
        "status": {"observedGeneration": observed} if observed is not None else {},
    }


async def test_the_echo_of_its_own_write_does_not_reconcile_again():
    c = Controller(Settings(defaults=OperatorDefaults()))
    key = ("VoiceAgent", "ns", "va")
    c._remember("VoiceAgent", agent("7", observed=1))  # e.g. its status patch came back as rv 7
    c.observe("VoiceAgent", "MODIFIED", agent("7", observed=1))
    assert c.queue.idle()
    c.observe("VoiceAgent", "MODIFIED", agent("8", observed=1))  # someone else's change
    assert not c.queue.idle()
    assert c.cache.get(*key)["metadata"]["resourceVersion"] == "8"


@pytest.mark.parametrize(
    ("kind", "crd", "version"),
    [
        ("ServiceMonitor", "servicemonitors.monitoring.coreos.com", "v1"),
        ("ScaledObject", "scaledobjects.keda.sh", "v1alpha1"),
    ],
)
async def test_an_optional_crd_appearing_and_going_re_reconciles_every_agent(
    kind: str, crd: str, version: str
):
    c = Controller(Settings(defaults=OperatorDefaults(prometheus_url="http://p:9090")))
    c.cache.put("VoiceAgent", agent("1", observed=1))
    obj: Obj = {
        "metadata": {"name": crd},
        "spec": {"versions": [{"name": version, "served": True}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    }
    c.observe_crd("ADDED", {**obj, "metadata": {"name": "widgets.example.com"}})
    assert c.defaults.served == frozenset()  # not one of ours
    assert c.queue.idle()
    c.observe_crd("ADDED", obj)
    assert c.defaults.served == {kind}
    assert c.defaults.prometheus_url == "http://p:9090"  # the other settings stay
    assert not c.queue.idle()
    c.cache.put(kind, {"metadata": {"name": "va", "namespace": "ns"}})
    c.observe_crd("DELETED", obj)
    assert c.defaults.served == frozenset()
    assert c.cache.get(kind, "ns", "va") is None  # gone with its CRD


class StatusWriter:
    """The one Kube call write_status makes: the patched object comes back with a new rv."""

    async def patch_status(self, kind: str, ns: str, name: str, patch: Obj) -> Obj:
        return {
            "metadata": {"name": name, "namespace": ns, "resourceVersion": "9"},
            "status": patch,
        }


async def test_a_knowledge_base_turning_ready_wakes_the_agents_using_it():
    """The operator's own KB status write is skipped as an echo by the watch: the agents waiting
    for it (KnowledgeBaseNotReady) must be queued by the write itself."""
    c = Controller(Settings(defaults=OperatorDefaults()))
    c.kube = StatusWriter()  # type: ignore[assignment]
    user = {
        "metadata": {"name": "va", "namespace": "ns"},
        "spec": {"knowledgeBases": [{"name": "kb"}]},
    }
    other = {"metadata": {"name": "other", "namespace": "ns"}, "spec": {}}
    c.cache.put("VoiceAgent", user)
    c.cache.put("VoiceAgent", other)
    kb = {"metadata": {"name": "kb", "namespace": "ns", "resourceVersion": "8"}, "status": {}}
    assert await c.write_status("KnowledgeBase", kb, {"phase": "Ready"})
    c.observe(
        "KnowledgeBase", "MODIFIED", {**kb, "metadata": {**kb["metadata"], "resourceVersion": "9"}}
    )
    assert c.queue._queued == {("VoiceAgent", "ns", "va")}
