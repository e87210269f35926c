"""KnowledgeBase → ingestion Job → status, and the VoiceAgents that wait for it."""

from __future__ import annotations

import json

import pytest

from .kube import Kubectl, condition, finish_ingest_pod, make_pods_ready, wait_for
from .objects import faq, ingest_result, knowledge_base, secrets, voice_agent

pytestmark = pytest.mark.cluster


def kb_status(k: Kubectl, ns: str) -> dict:
    return (k.get("knowledgebase", "docs", ns) or {}).get("status", {})


def test_ingestion_job_result_reaches_kb_and_agent_status(kubectl: Kubectl, namespace: str):
    kubectl.apply([*secrets(namespace), faq(namespace), knowledge_base("docs", namespace)])
    kubectl.apply(voice_agent("ava", namespace, knowledgeBases=[{"name": "docs", "topK": 3}]))
    job_name = wait_for("an ingestion Job", lambda: kb_status(kubectl, namespace).get("jobName"))
    job = kubectl.get("job", job_name, namespace)
    assert job
    assert job["metadata"]["ownerReferences"][0]["kind"] == "KnowledgeBase"
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][:3] == ["ingest", "-f", "/etc/kubevox/knowledgebase.yaml"]
    assert {
        "name": "REDIS_URL",
        "valueFrom": {"secretKeyRef": {"name": "redis", "key": "url"}},
    } in c["env"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert "/var/run/kubevox/sources/configmap/faq" in mounts
    assert kb_status(kubectl, namespace)["phase"] == "Indexing"

    # The agent gets its index and Redis, but is not Ready before the KnowledgeBase is.
    cm = wait_for("agent config", lambda: kubectl.get("configmap", "ava-config", namespace))
    kbs = json.loads(cm["data"]["agent.json"])["knowledgeBases"]
    assert kbs[0]["indexName"] == f"kb-{namespace}-docs"
    assert kbs[0]["topK"] == 3
    wait_for("worker pods", lambda: kubectl.list("pods", namespace, "kubevox.dev/voiceagent=ava"))
    make_pods_ready(kubectl, namespace, "kubevox.dev/voiceagent=ava")
    va = wait_for(
        "agent waiting for the KB",
        lambda: (
            (v := kubectl.get("voiceagent", "ava", namespace))
            and condition(v, "Ready").get("reason") == "KnowledgeBaseNotReady"
            and v
        ),
    )
    assert condition(va, "Ready")["status"] == "False"

    finish_ingest_pod(kubectl, namespace, job_name, 0, ingest_result(documents=2, chunks=7))
    st = wait_for(
        "KB Ready", lambda: (s := kb_status(kubectl, namespace)).get("phase") == "Ready" and s
    )
    assert (st["documents"], st["chunks"]) == (2, 7)
    assert st["contentHash"]
    assert st["lastIndexedTime"] == "2026-01-01T00:00:00Z"
    wait_for(
        "agent Ready",
        lambda: (
            condition(kubectl.get("voiceagent", "ava", namespace), "Ready").get("status") == "True"
        ),
    )

    # Same content: no new Job on resync. New ConfigMap data: a new Job.
    jobs = {j["metadata"]["name"] for j in kubectl.list("jobs", namespace)}
    assert jobs == {job_name}
    kubectl.apply(faq(namespace, "Q: Parking? A: On Elm Street."))
    new_job = wait_for(
        "a Job for the new content",
        lambda: (n := kb_status(kubectl, namespace).get("jobName")) != job_name and n,
        timeout=20,
    )
    finish_ingest_pod(kubectl, namespace, new_job, 1, ingest_result(ok=False))
    st = wait_for(
        "KB Failed",
        lambda: (s := kb_status(kubectl, namespace)).get("phase") == "Failed" and s,
        timeout=30,
    )
    assert condition({"status": st}, "Failed")["message"] == "source faq: cannot parse"
    assert st["sourceErrors"] == [{"source": "faq", "message": "cannot parse"}]
    # The previous index still serves: its figures stay, and so does the agent.
    assert (st["documents"], st["chunks"]) == (2, 7)
    assert condition({"status": st}, "Ready")["reason"] == "PreviousIndexServing"
    assert condition(kubectl.get("voiceagent", "ava", namespace), "Ready")["status"] == "True"


def test_missing_knowledge_base_blocks_the_agent_until_created(kubectl: Kubectl, namespace: str):
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace, knowledgeBases=[{"name": "docs"}]))
    va = wait_for(
        "Degraded KnowledgeBaseMissing",
        lambda: (
            (v := kubectl.get("voiceagent", "ava", namespace))
            and condition(v, "Degraded").get("reason") == "KnowledgeBaseMissing"
            and v
        ),
    )
    assert f"KnowledgeBase {namespace}/docs not found" in condition(va, "Degraded")["message"]
    kubectl.apply([faq(namespace), knowledge_base("docs", namespace)])
    wait_for("config rendered", lambda: kubectl.get("configmap", "ava-config", namespace))
    wait_for(
        "waiting for the KB now",
        lambda: (
            condition(kubectl.get("voiceagent", "ava", namespace), "Ready").get("reason")
            == "KnowledgeBaseNotReady"
        ),
    )
