"""The offline sample on a real node, through the Helm-installed operator: the ingestion Job and
the worker run as pods, a caller on the host is answered from the knowledge base by the pod the
operator made, and deleting the VoiceAgent removes everything it owned. The tests run in file
order and share the sample's objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubevox_devenv import install as installmod

from agent_runtime.caller import CallOptions, SimulatedCall
from agent_runtime.caller.audio import synthesize

from .conftest import System, wait_until

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "manifests" / "samples" / "offline-agent.yaml"
WORKER_LABEL = "app.kubernetes.io/instance=offline"
PHARMACY = "When does the pharmacy open on Saturdays?"


def _condition(obj: dict[str, Any], kind: str) -> dict[str, str]:
    conditions = (obj.get("status") or {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


# The first test also pays for the session's cluster and install (images loaded, Helm): minutes.
@pytest.mark.timeout(1500)
def test_the_sample_turns_ready_with_its_pods(system: System, namespace: str) -> None:
    system.kubectl("apply", "-n", namespace, "-f", str(SAMPLE))

    def kb_ready() -> dict[str, Any] | None:
        kb = system.get("knowledgebase", "clinic-facts", namespace)
        return kb if (kb.get("status") or {}).get("phase") == "Ready" else None

    def agent_ready() -> dict[str, Any] | None:
        agent = system.get("voiceagent", "offline", namespace)
        return agent if _condition(agent, "Ready").get("status") == "True" else None

    kb = wait_until("KnowledgeBase clinic-facts Ready (its Job ran as a pod)", kb_ready, 600)
    assert kb["status"]["chunks"] > 0
    jobs = json.loads(system.kubectl("get", "jobs", "-n", namespace, "-o=json"))["items"]
    assert any(j["status"].get("succeeded") == 1 for j in jobs), "no ingestion Job succeeded"

    agent = wait_until("VoiceAgent offline Ready (its worker registered)", agent_ready, 600)
    assert agent["status"]["readyReplicas"] == 1
    assert agent["status"]["observedGeneration"] == agent["metadata"]["generation"]
    pods = json.loads(
        system.kubectl("get", "pods", "-n", namespace, "-l", WORKER_LABEL, "-o=json")
    )["items"]
    assert [p["status"]["phase"] for p in pods] == ["Running"]

    # Ready follows the pod's readiness probe, which livekit-agents answers before the worker
    # has registered; a call placed before registration is never dispatched.
    pod_ip = pods[0]["status"]["podIP"]
    wait_until("the worker registered", lambda: installmod.worker_registered(pod_ip), 300)


@pytest.mark.timeout(600)
async def test_a_caller_is_answered_from_the_knowledge_base_by_the_pod(
    system: System, namespace: str
) -> None:
    options = CallOptions(
        url=system.livekit_url(),
        api_key=system.keys[0],
        api_secret=system.keys[1],
        agent_name="offline",
        greeting_timeout=120.0,
        reply_timeout=90.0,
    )
    result = await SimulatedCall(options).run([synthesize(PHARMACY)])
    assert result.error is None, result.error
    assert "clinic" in (result.greeting or "").lower()
    heard = result.turns[0].heard.lower()
    assert "saturday" in heard, heard
    assert "9" in heard or "nine" in heard, heard

    (pod,) = json.loads(
        system.kubectl("get", "pods", "-n", namespace, "-l", WORKER_LABEL, "-o=json")
    )["items"]
    name = pod["metadata"]["name"]

    def record() -> dict[str, object] | None:
        for line in system.kubectl("logs", "-n", namespace, name).splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            call = entry.get("call") if isinstance(entry, dict) else None
            if isinstance(call, dict) and call.get("room") == result.room:
                return call
        return None

    call = wait_until(f"the call record of {result.room} in {name}'s log", record, timeout=60)
    assert call["worker"] == name
    assert call["namespace"] == namespace
    assert call["turns"] >= 2  # the greeting and the answer


@pytest.mark.timeout(600)
def test_deleting_the_agent_removes_what_it_owned(system: System, namespace: str) -> None:
    owned = ("deployment", "horizontalpodautoscaler", "configmap", "service", "poddisruptionbudget")
    before = {
        kind: system.kubectl("get", kind, "-n", namespace, "-l", WORKER_LABEL, "-o=name").split()
        for kind in owned
    }
    assert before["deployment"], before
    assert before["configmap"], before
    system.kubectl("delete", "-n", namespace, "-f", str(SAMPLE), "--wait=true", "--timeout=180s")

    def gone() -> bool:
        return not any(
            system.kubectl("get", kind, "-n", namespace, "-l", WORKER_LABEL, "-o=name").strip()
            for kind in (*owned, "pod")
        )

    wait_until("the VoiceAgent's children and pods garbage-collected", gone, timeout=180)
    system.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=180s")
    names = system.kubectl("get", "namespaces", "-o=name").split()
    assert f"namespace/{namespace}" not in names
