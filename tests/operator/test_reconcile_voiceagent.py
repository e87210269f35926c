"""The VoiceAgent reconciler against an in-memory API (fake_api.py): what one reconcile writes,
what it reports, and that a second one writes nothing. No cluster."""

from __future__ import annotations

import pytest
from kubevox_api.contract import SIP_FINALIZER
from kubevox_operator.builders import OperatorDefaults
from kubevox_operator.builders.common import child_name
from kubevox_operator.policy import AgentPolicy

from tests.support.objects import knowledge_base, secrets, voice_agent

from .fake_api import Harness, Obj, harness

NS = "team"
KEY = ("VoiceAgent", NS, "va")
CHILDREN = {
    ("ConfigMap", "va-config"),
    ("ServiceAccount", "va-worker"),
    ("RoleBinding", "va-worker"),
    ("Deployment", "va"),
    ("HorizontalPodAutoscaler", "va"),
    ("Service", "va-metrics"),
    ("PodDisruptionBudget", "va"),
}


def cond(status: Obj, type_: str) -> tuple[str, str]:
    c = next(c for c in status["conditions"] if c["type"] == type_)
    return c["status"], c["reason"]


def with_agent(h: Harness, **spec: object) -> None:
    for s in secrets(NS):
        h.api.seed(s)
    h.api.seed(voice_agent("va", NS, **spec))
    h.watch("VoiceAgent", NS, "va")


def children_applied(h: Harness) -> set[tuple[str, str]]:
    """The children applied (the configuration's ControllerRevision aside: it is no child that
    runs anything, test_agent_test_runs.py checks it)."""
    return {(k, n) for _, k, n in h.api.written("apply") if k != "ControllerRevision"}


def status(h: Harness) -> Obj:
    live = h.api.live("VoiceAgent", NS, "va")
    assert live is not None
    return dict(live.get("status") or {})


async def test_a_new_agent_gets_its_children_and_a_status_then_nothing_more() -> None:
    h = harness()
    with_agent(h)
    again, outcome = await h.agents.reconcile(KEY)
    assert (again, outcome) == (None, "changed")
    applied = {(kind, name) for verb, kind, name in h.api.writes if verb == "apply"}
    assert applied == CHILDREN | {("ControllerRevision", f"va-{status(h)['configHash'][:10]}")}
    assert h.api.written("patch-status") == [("patch-status", "VoiceAgent", "va")]
    st = status(h)
    assert st["observedGeneration"] == 1
    assert cond(st, "Ready") == ("False", "RolloutPending")  # as applied: no status yet
    assert cond(st, "Degraded") == ("False", "AsExpected")
    assert st["configHash"]
    dep = h.api.live("Deployment", NS, "va")
    assert dep is not None
    assert dep["metadata"]["ownerReferences"][0]["uid"] == h.api.objects[KEY]["metadata"]["uid"]

    # The store remembered its writes: the next reconcile sees them and writes nothing.
    h.api.writes.clear()
    h.watch("VoiceAgent", NS, "va")
    assert await h.agents.reconcile(KEY) == (None, "unchanged")
    assert h.api.writes == []


async def test_the_watch_echo_of_the_reconciles_own_writes_is_recognised() -> None:
    h = harness()
    with_agent(h)
    await h.agents.reconcile(KEY)
    for kind, name in CHILDREN | {("VoiceAgent", "va")}:
        live = h.api.live(kind, NS, name)
        assert live is not None
        assert h.store.echo((kind, NS, name), live["metadata"]["resourceVersion"])
        assert not h.store.echo((kind, NS, name), live["metadata"]["resourceVersion"])  # once


async def test_a_ready_deployment_makes_the_agent_ready_with_an_event() -> None:
    h = harness()
    with_agent(h)
    await h.agents.reconcile(KEY)
    dep = h.api.objects[("Deployment", NS, "va")]
    dep["status"] = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    h.watch("Deployment", NS, "va")
    h.watch("VoiceAgent", NS, "va")
    assert await h.agents.reconcile(KEY) == (None, "changed")
    st = status(h)
    assert cond(st, "Ready") == ("True", "AgentReady")
    assert (st["replicas"], st["readyReplicas"]) == (1, 1)
    assert await h.event_reasons() == [("Normal", "AgentReady")]


async def test_a_missing_secret_blocks_the_agent_and_backs_off() -> None:
    h = harness()
    h.api.seed(voice_agent("va", NS))  # no Secrets at all
    h.watch("VoiceAgent", NS, "va")
    again, outcome = await h.agents.reconcile(KEY)
    assert outcome == "blocked"
    assert again == 1.0  # the first retry of the backoff
    assert await h.agents.reconcile(KEY) == (2.0, "blocked")
    # The children are still applied (their pods wait for the Secret), once.
    assert children_applied(h) == CHILDREN
    assert len(h.api.written("apply")) == len(CHILDREN) + 1  # and the revision, once
    st = status(h)
    assert cond(st, "Ready") == ("False", "SecretMissing")
    assert cond(st, "Progressing") == ("False", "Blocked")
    assert cond(st, "Degraded") == ("True", "SecretMissing")
    assert ("Warning", "SecretMissing") in await h.event_reasons()


async def test_a_missing_knowledge_base_holds_the_children() -> None:
    h = harness()
    with_agent(h, knowledgeBases=[{"name": "kb"}])
    assert (await h.agents.reconcile(KEY))[1] == "blocked"
    assert h.api.written("apply") == []
    assert cond(status(h), "Ready") == ("False", "KnowledgeBaseMissing")


async def test_a_knowledge_base_not_ready_yet_is_waited_for() -> None:
    h = harness()
    with_agent(h, knowledgeBases=[{"name": "kb"}])
    h.api.seed(knowledge_base("kb", NS))
    h.watch("KnowledgeBase", NS, "kb")
    assert await h.agents.reconcile(KEY) == (None, "changed")
    assert children_applied(h) == CHILDREN  # built meanwhile
    st = status(h)
    assert cond(st, "Ready") == ("False", "KnowledgeBaseNotReady")
    assert cond(st, "Progressing")[0] == "True"


async def test_a_namesake_child_is_left_alone_and_reported() -> None:
    h = harness()
    with_agent(h)
    h.api.seed(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "va-metrics", "namespace": NS}}
    )
    again, outcome = await h.agents.reconcile(KEY)
    assert outcome == "blocked"
    assert again is not None
    applied = children_applied(h)
    assert applied == CHILDREN - {("Service", "va-metrics")}  # the others are still applied
    st = status(h)
    assert cond(st, "Degraded") == ("True", "ChildConflict")
    live = h.api.live("Service", NS, "va-metrics")
    assert live is not None
    assert "ownerReferences" not in live["metadata"]


async def test_a_child_the_api_server_rejects_is_reported() -> None:
    h = harness()
    h.api.reject["PodDisruptionBudget"] = "spec.maxUnavailable: Invalid value"
    with_agent(h)
    assert (await h.agents.reconcile(KEY))[1] == "blocked"
    c = next(c for c in status(h)["conditions"] if c["type"] == "Degraded")
    assert (c["status"], c["reason"]) == ("True", "ChildRejected")
    assert "spec.maxUnavailable: Invalid value" in c["message"]


async def test_a_restricted_image_writes_no_child() -> None:
    h = harness(policy=AgentPolicy(allowed_image_prefixes=("registry.example/",)))
    with_agent(h, image="evil.example/runtime:1")
    assert (await h.agents.reconcile(KEY))[1] == "blocked"
    assert h.api.written("apply") == []
    assert cond(status(h), "Degraded")[0] == "True"


async def test_switching_to_keda_removes_the_hpa_and_reports_keda_unavailable() -> None:
    h = harness()
    with_agent(h)
    await h.agents.reconcile(KEY)
    h.watch("HorizontalPodAutoscaler", NS, "va")
    scaling = {**h.api.objects[KEY]["spec"]["scaling"], "autoscaler": "keda"}
    h.api.objects[KEY]["spec"]["scaling"] = scaling
    h.watch("VoiceAgent", NS, "va")
    h.api.writes.clear()
    assert (await h.agents.reconcile(KEY))[1] == "changed"
    assert ("delete", "HorizontalPodAutoscaler", "va") in h.api.writes
    assert h.cache.get("HorizontalPodAutoscaler", NS, "va") is None
    assert cond(status(h), "Degraded") == ("True", "AutoscalerUnavailable")


async def test_keda_served_gets_a_scaled_object() -> None:
    h = harness(OperatorDefaults(served=frozenset({"ScaledObject"}), prometheus_url="http://p"))
    with_agent(h, scaling={"autoscaler": "keda", "minReplicas": 0, "maxReplicas": 3})
    await h.agents.reconcile(KEY)
    applied = children_applied(h)
    assert ("ScaledObject", child_name("va")) in applied
    assert ("HorizontalPodAutoscaler", "va") not in applied


async def test_waiting_calls_are_reported() -> None:
    h = harness()
    with_agent(h)
    h.waiting[(NS, "va")] = 3
    await h.agents.reconcile(KEY)
    assert status(h)["waitingCalls"] == 3


async def test_a_deleted_agent_is_forgotten() -> None:
    h = harness()
    assert await h.agents.reconcile(KEY) == (None, "deleted")
    assert h.api.writes == []


@pytest.mark.parametrize("telephony_left", [True, False])
async def test_the_sip_finalizer_is_released_when_livekit_cannot_be_asked(
    telephony_left: bool,
) -> None:
    """No LiveKit credentials (the Secret went first, nothing remembered): the finalizer is
    released rather than blocking the deletion (or the removal of telephony) for ever."""
    h = harness()
    spec = {"telephony": {"sip": {"numbers": ["+15550100"]}}} if telephony_left else {}
    h.api.seed(
        {
            **voice_agent("va", NS, **spec),
            "metadata": {
                "name": "va",
                "namespace": NS,
                "finalizers": [SIP_FINALIZER],
                **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if telephony_left else {}),
            },
            "status": {"sipTrunkId": "ST_1", "sipDispatchRuleId": "SDR_1"},
        }
    )
    h.watch("VoiceAgent", NS, "va")
    again, outcome = await h.agents.reconcile(KEY)
    if telephony_left:  # deleted: the finalizer goes, and the object with it
        assert (again, outcome) == (None, "deleted")
        assert h.api.live("VoiceAgent", NS, "va") is None
    else:  # telephony removed from the spec: the finalizer goes, the agent stays
        assert outcome == "blocked"  # its Secrets are missing too
        live = h.api.live("VoiceAgent", NS, "va")
        assert live is not None
        assert not live["metadata"]["finalizers"]
    assert ("patch", "VoiceAgent", "va") in h.api.writes
