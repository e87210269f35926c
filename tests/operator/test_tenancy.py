"""Tenants sharing a cluster and a LiveKit server (issue #15): agent names no other namespace
shares, children the operator did not create left alone, children the API server rejects
reported, and ingestion results trusted only from the Job's own pods."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubevox_api import KnowledgeBase
from kubevox_operator.names import Claims, agent_claim, livekit_endpoint
from kubevox_operator.reconcile_knowledgebase import trusted_job_pods

from tests.support.kube import Kubectl, condition, ingest_exited, now, wait_for
from tests.support.objects import faq, ingest_result, knowledge_base, secrets, voice_agent
from tests.support.operator_process import SA_USER, OperatorProcess, audit_writes

Obj = dict[str, Any]


# --- pure ----------------------------------------------------------------------------------------


def test_one_livekit_server_has_one_spelling() -> None:
    assert livekit_endpoint("wss://LiveKit.example.com/") == livekit_endpoint(
        "https://livekit.example.com:443"
    )
    assert livekit_endpoint("ws://livekit:7880") != livekit_endpoint("ws://livekit:7881")


def test_claims_pair_agents_on_one_name_and_one_server_only() -> None:
    claims = Claims()
    a, b, c = ("VoiceAgent", "a", "x"), ("VoiceAgent", "b", "x"), ("VoiceAgent", "c", "x")
    assert claims.update(a, ("ws://lk:7880", "shared")) == set()
    assert claims.update(b, ("ws://lk:7880", "shared")) == {a}  # a must look again
    assert claims.update(c, ("ws://other:7880", "shared")) == set()  # another server
    assert claims.others(a) == [b]
    assert claims.others(c) == []
    assert claims.update(b, ("ws://lk:7880", "b-only")) == {a}  # the conflict ended
    assert claims.others(a) == []
    assert claims.update(a, None) == set()


def test_the_default_claim_is_the_namespaced_name() -> None:
    body = voice_agent("support", "team-a")
    assert agent_claim(body) == (livekit_endpoint("ws://livekit:7880"), "team-a.support")
    assert agent_claim(voice_agent("a-support", "team")) != agent_claim(body)
    assert (
        agent_claim({**body, "metadata": {**body["metadata"], "deletionTimestamp": now()}}) is None
    )


def test_default_index_names_never_collide() -> None:
    def index(ns: str, name: str) -> str:
        return KnowledgeBase.model_validate(knowledge_base(name, ns)).index_name

    assert index("team-a", "docs") != index("team", "a-docs")  # both were kb-team-a-docs
    long = index("n" * 63, "d" * 200)
    assert len(long) <= 100
    assert long == index("n" * 63, "d" * 200)
    assert long != index("n" * 63, "d" * 199)


def test_only_the_jobs_own_pods_are_trusted() -> None:
    job = {"metadata": {"name": "j", "uid": "job-uid"}}
    own = {"metadata": {"ownerReferences": [{"kind": "Job", "uid": "job-uid", "controller": True}]}}
    forged = {"metadata": {"labels": {"job-name": "j"}}}
    other = {"metadata": {"ownerReferences": [{"kind": "Job", "uid": "x", "controller": True}]}}
    assert trusted_job_pods([own, forged, other], job) == [own]
    assert trusted_job_pods([own], None) == []


# --- against the API server ----------------------------------------------------------------------


def degraded(k: Kubectl, name: str, ns: str, reason: str) -> Obj | None:
    c = condition(k.get("voiceagent", name, ns), "Degraded")
    return c if c.get("status") == "True" and c.get("reason") == reason else None


@pytest.fixture
def other_namespace(kubectl: Kubectl, namespace: str) -> Any:
    ns = f"{namespace}-b"
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.mark.cluster
def test_same_name_in_two_namespaces_gets_two_agent_names_and_a_shared_name_is_reported(
    kubectl: Kubectl, namespace: str, other_namespace: str, operator: OperatorProcess
) -> None:
    a, b = namespace, other_namespace
    for ns in (a, b):
        kubectl.apply(secrets(ns))
        kubectl.apply(voice_agent("support", ns))

    def agent_name(ns: str) -> str | None:
        return ((kubectl.get("voiceagent", "support", ns) or {}).get("status") or {}).get(
            "agentName"
        )

    assert wait_for("A's agent name", lambda: agent_name(a)) == f"{a}.support"
    assert wait_for("B's agent name", lambda: agent_name(b)) == f"{b}.support"
    cm = kubectl.get("configmap", "support-config", a)
    assert cm is not None
    assert json.loads(cm["data"]["agent.json"])["agentName"] == f"{a}.support"  # the workers'
    assert not degraded(kubectl, "support", a, "AgentNameConflict")

    # An explicit name another namespace's agent already uses, on the same LiveKit server.
    kubectl.apply(voice_agent("support", a, agentName="front-desk"))
    kubectl.apply(voice_agent("desk", b, agentName="front-desk"))
    for ns, name, other in ((a, "support", f"{b}/desk"), (b, "desk", f"{a}/support")):
        c = wait_for(
            f"AgentNameConflict on {ns}/{name}",
            lambda ns=ns, name=name: degraded(kubectl, name, ns, "AgentNameConflict"),
        )
        assert f"VoiceAgent {other}" in c["message"]
        assert "'front-desk'" in c["message"]
    events = kubectl("get", "events", "-n", a, "-o", "json")
    assert "AgentNameConflict" in events

    # One of them moves away: both are clear again.
    kubectl.apply(voice_agent("desk", b, agentName="desk-b"))
    for ns, name in ((a, "support"), (b, "desk")):
        wait_for(
            f"{ns}/{name} no longer in conflict",
            lambda ns=ns, name=name: not degraded(kubectl, name, ns, "AgentNameConflict"),
        )


FOREIGN = {
    "configmap": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config"},
        "data": {"owner": "the team's own"},
    },
    # Labelled as the operator's, yet no owner reference: still not the VoiceAgent's.
    "service": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web-metrics",
            "labels": {"app.kubernetes.io/managed-by": "kubevox-operator"},
        },
        "spec": {"ports": [{"name": "web", "port": 8080}], "selector": {"app": "web"}},
    },
}


@pytest.mark.cluster
def test_objects_the_operator_did_not_create_are_not_adopted(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    kubectl.apply(secrets(ns))
    before = {}
    for kind, obj in FOREIGN.items():
        kubectl.apply({**obj, "metadata": {**obj["metadata"], "namespace": ns}})
        got = kubectl.get(kind, obj["metadata"]["name"], ns)
        assert got is not None
        before[kind] = got
    kubectl.apply(voice_agent("web", ns))
    c = wait_for("ChildConflict", lambda: degraded(kubectl, "web", ns, "ChildConflict"))
    assert (
        f"ConfigMap {ns}/web-config" in c["message"]
        or f"Service {ns}/web-metrics" in (c["message"])
    )
    wait_for("the other children", lambda: kubectl.get("deployment", "web", ns))
    time.sleep(3)  # a few retries at backoff pace
    for kind, old in before.items():
        new = kubectl.get(kind, old["metadata"]["name"], ns)
        assert new is not None
        assert new["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"], kind
        assert not new["metadata"].get("ownerReferences")

    # Deleting the VoiceAgent takes its own children, never the team's objects.
    kubectl("delete", "voiceagent", "web", "-n", ns)
    wait_for("its Deployment collected", lambda: kubectl.get("deployment", "web", ns) is None)
    for kind, old in before.items():
        assert kubectl.get(kind, old["metadata"]["name"], ns) is not None, kind


@pytest.mark.cluster
def test_a_name_too_long_for_the_children_is_refused_at_admission(
    kubectl: Kubectl, namespace: str
) -> None:
    # A valid object name, yet too long for the label value every child carries (63).
    out = kubectl.plane.kubectl_run(
        "apply", "-f", "-", input=json.dumps(voice_agent("clinic-" + "x" * 70, namespace))
    )
    assert out.returncode != 0
    assert "metadata.name" in out.stderr, out.stderr
    out = kubectl.plane.kubectl_run(
        "apply", "-f", "-", input=json.dumps(knowledge_base("d" * 64, namespace))
    )
    assert out.returncode != 0
    assert "metadata.name" in out.stderr, out.stderr


@pytest.mark.cluster
def test_a_child_the_api_server_rejects_is_reported_and_retried_at_backoff_pace(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, control_plane: Any
) -> None:
    ns = namespace
    kubectl.apply(secrets(ns))
    start = time.time()
    # Passed to the worker pods' template as given: the API server refuses the Deployment.
    kubectl.apply(voice_agent("annotated", ns, pod={"annotations": {"not a/valid/key": "x"}}))
    c = wait_for("ChildRejected", lambda: degraded(kubectl, "annotated", ns, "ChildRejected"))
    assert f"Deployment {ns}/annotated" in c["message"], c["message"]
    assert "not a/valid/key" in c["message"]
    assert "ChildRejected" in kubectl("get", "events", "-n", ns, "-o", "json")
    assert kubectl.get("configmap", "annotated-config", ns)  # the other children are there
    reported = time.time()
    time.sleep(8)

    def attempts(since: float) -> int:
        return len(
            [
                w
                for w in audit_writes(control_plane.audit_log, SA_USER, since)
                if w["objectRef"].get("namespace") == ns
                and w["objectRef"].get("resource") == "deployments"
            ]
        )

    assert attempts(start) >= 2  # the first, and retried
    # Backoff 1, 2, 4, 4… s (the tests cap it at 4 s): a few in these 8 s, not a hot loop
    # (3 by the backoff alone; CI at load 17 saw 5). Counted from the report, not the start:
    # on a busy machine the report itself can take 20 s, in which the early backoffs add up.
    assert attempts(reported) <= 6, attempts(reported)
    assert operator.proc is not None
    assert operator.proc.poll() is None

    kubectl.apply(voice_agent("annotated", ns, pod={"annotations": {"valid/key": "x"}}))
    wait_for("fixed", lambda: not degraded(kubectl, "annotated", ns, "ChildRejected"), 30)
    assert kubectl.get("deployment", "annotated", ns)


@pytest.mark.cluster
def test_an_ingestion_result_is_read_only_from_the_jobs_own_pod(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    kubectl.apply([*secrets(ns), faq(ns), knowledge_base("docs", ns)])
    job = wait_for("ingestion Job", lambda: kubectl.list("jobs", ns))[0]
    job_name = job["metadata"]["name"]
    real = wait_for(
        "the Job's pod",
        lambda: [
            p
            for p in kubectl.list("pods", ns, f"job-name={job_name}")
            if p["metadata"].get("ownerReferences")
        ],
    )[0]
    # Anyone who may create pods can label one as the Job's and write its "result".
    forged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "forged",
            "namespace": ns,
            "labels": {
                "job-name": job_name,
                "app.kubernetes.io/managed-by": "kubevox-operator",
                "kubevox.dev/knowledge-base": "docs",
            },
        },
        "spec": {"containers": [{"name": "ingest", "image": "x"}]},
    }
    kubectl.apply(forged)
    terminate(
        kubectl, ns, "forged", ingest_result(documents=999, chunks=999), "2099-01-01T00:00:00Z"
    )
    terminate(kubectl, ns, real["metadata"]["name"], ingest_result(documents=2, chunks=5), now())

    def indexed() -> Obj | None:
        st = (kubectl.get("knowledgebase", "docs", ns) or {}).get("status") or {}
        return st if st.get("phase") == "Ready" and st.get("documents") is not None else None

    st = wait_for("Ready with the Job's result", indexed, 40)
    assert (st["documents"], st["chunks"]) == (2, 5)


def terminate(k: Kubectl, ns: str, pod: str, result: Obj, finished: str) -> None:
    """What a kubelet reports when the ingest container exits 0 with ``result``."""
    t = now()
    k.patch_status(
        "pod",
        pod,
        ns,
        {
            "phase": "Succeeded",
            "containerStatuses": [ingest_exited(0, json.dumps(result), None, t, finished)],
        },
    )
