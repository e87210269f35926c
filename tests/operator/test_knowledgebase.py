"""KnowledgeBase → ingestion Job → status, and the VoiceAgents that wait for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.kube import Kubectl, condition, finish_ingest_pod, make_pods_ready, wait_for
from tests.support.objects import faq, ingest_result, knowledge_base, secrets, voice_agent

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
    assert kbs[0]["indexName"] == f"kb_{namespace}_docs"
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


def test_out_of_memory_ingestion_fails_at_once_with_its_reason(kubectl: Kubectl, namespace: str):
    """An OOM-killed ingestion would die again on the same sources: the real Job controller
    fails the Job without a second pod, and the status says IngestionOutOfMemory."""
    kubectl.apply([*secrets(namespace), faq(namespace), knowledge_base("docs", namespace)])
    job_name = wait_for("an ingestion Job", lambda: kb_status(kubectl, namespace).get("jobName"))
    finish_ingest_pod(kubectl, namespace, job_name, 137, {}, reason="OOMKilled")
    st = wait_for(
        "KB Failed",
        lambda: (s := kb_status(kubectl, namespace)).get("phase") == "Failed" and s,
        timeout=30,
    )
    failed = condition({"status": st}, "Failed")
    assert failed["reason"] == "IngestionOutOfMemory"
    assert job_name in failed["message"]
    assert "maxSourceBytes" in failed["message"]
    assert "embedding 4096" not in failed["message"]  # the log's tail is not a result
    assert condition({"status": st}, "Ready")["reason"] == "IngestionOutOfMemory"
    job = kubectl.get("job", job_name, namespace)
    assert condition(job, "Failed").get("reason") == "PodFailurePolicy"
    assert len(kubectl.list("pods", namespace, f"job-name={job_name}")) == 1
    wait_for(
        "an IngestionOutOfMemory Event",
        lambda: any(
            e.get("reason") == "IngestionOutOfMemory" for e in kubectl.list("events", namespace)
        ),
    )


KB_CRD = Path(__file__).resolve().parents[2] / "crds" / "knowledgebases.kubevox.dev.yaml"


def _kb_with_interval(ns: str, interval: str) -> str:
    kb = knowledge_base("docs", ns)
    kb["spec"]["refreshInterval"] = interval
    return json.dumps(kb)


def test_knowledge_base_from_before_the_refresh_minimum_stays_readable(
    kubectl: Kubectl, namespace: str
):
    """A KnowledgeBase stored with refreshInterval 30s before the one-minute minimum: it can
    still be read and edited (CRD validation ratcheting: the field is unchanged), a new short
    interval is refused naming the field, and the operator runs it every minute and says so."""
    kubectl.apply([*secrets(namespace), faq(namespace)])
    # The CRD as it was before the rule: the spec's CEL rule removed.
    path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/x-kubernetes-validations"
    kubectl("patch", "crd", "knowledgebases.kubevox.dev", "--type=json",
            "-p", json.dumps([{"op": "remove", "path": path}]))  # fmt: skip
    try:
        wait_for(
            "the old CRD to admit 30s",
            lambda: (
                kubectl.plane.kubectl_run(
                    "create", "-f", "-", input=_kb_with_interval(namespace, "30s")
                ).returncode
                == 0
            ),
        )
    finally:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(KB_CRD))
    wait_for(
        "the new CRD to refuse 30s",
        lambda: "refreshInterval must be at least 1m"
        in kubectl.plane.kubectl_run(
            "create", "--dry-run=server", "-f", "-",
            input=_kb_with_interval(namespace, "45s").replace('"docs"', '"other"'),
        ).stderr,
    )  # fmt: skip

    kb = kubectl.get("knowledgebase", "docs", namespace)
    assert kb is not None
    assert kb["spec"]["refreshInterval"] == "30s"
    kubectl("label", "knowledgebase", "docs", "-n", namespace, "team=support")  # ratcheting
    out = kubectl.plane.kubectl_run(
        "patch", "knowledgebase", "docs", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"refreshInterval": "45s"}}),
    )  # fmt: skip
    assert out.returncode != 0
    assert "spec.refreshInterval" in out.stderr
    assert "refreshInterval must be at least 1m" in out.stderr

    # The operator reconciles it as 1m: an Event says so, the Job's manifest carries 1m.
    wait_for(
        "a RefreshIntervalRaised Event",
        lambda: any(
            e.get("reason") == "RefreshIntervalRaised" and "30s" in e.get("message", "")
            for e in kubectl.list("events", namespace)
        ),
    )
    wait_for("an ingestion Job", lambda: kb_status(kubectl, namespace).get("jobName"))
    cm = kubectl.get("configmap", "docs-ingest", namespace)
    assert cm is not None
    manifest = yaml.safe_load(cm["data"]["knowledgebase.yaml"])
    assert manifest["spec"]["refreshInterval"] == "1m"


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
