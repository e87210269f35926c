"""Conversation tests on the real node: the offline sample and its VoiceAgentTest
(manifests/samples/tests/offline-agent-tests.yaml) applied through kubectl, the operator runs the
suite as a Job pod for each configuration it applies, and reads the pod's report into the suite's
status, the agent's status.tests, its Tested condition, its revisions and an Event; Argo CD's
health check of the suite follows. A bad change
(the grounding guard disabled: SmolLM2 then answers what the clinic's facts do not cover, and
mostly invents the hours) fails; `kubevox-agent rollback` puts the last configuration whose tests
passed back, which is tested again and passes.

The agent runs in its own namespace with minReplicas 0: no worker is needed to test it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubevox_api import contract
from kubevox_devenv import install as installmod
from kubevox_devenv.fleet import sample_for_this_node

from tests.support.lua import health
from tests.support.tools import lua_interpreters

from .conftest import System, wait_until
from .helpers import condition

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "manifests" / "samples" / "tests" / "offline-agent-tests.yaml"
HEALTH_CHECK = REPO / "manifests/argocd/health/kubevox.dev/VoiceAgentTest/health.lua"
CASES = {"offline-smoke/weekday-hours", "offline-smoke/out-of-scope"}


@pytest.fixture(scope="module")
def tested_namespace(system: System) -> str:
    ns = f"tested-{uuid.uuid4().hex[:6]}"
    installmod.dev_secrets(system.kube, ns, system.keys)
    return ns


def apply_agent(system: System, namespace: str, guard: str) -> None:
    docs = list(yaml.safe_load_all(sample_for_this_node()))
    agent = next(d for d in docs if d["kind"] == contract.VOICE_AGENT_KIND)
    agent["spec"]["scaling"]["minReplicas"] = 0  # no worker needed: the tests are text mode
    agent["spec"]["groundingGuard"]["mode"] = guard
    system.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def finished_tests(system: System, namespace: str, after: str | None = None) -> dict[str, Any]:
    """The agent once its current configuration (not ``after``) has a finished test result."""

    def probe() -> dict[str, Any] | None:
        agent = system.get("voiceagent", "offline", namespace)
        st = agent.get("status") or {}
        tests = st.get("tests") or {}
        current = st.get("configHash")
        finished = tests.get("phase") in ("Passed", "Failed", "Error")
        if current and current != after and tests.get("configHash") == current and finished:
            return agent
        return None

    return wait_until("the suite's result for the agent's configuration", probe, 900)


def argo_cd_health(obj: dict[str, Any]) -> dict[str, str]:
    """What Argo CD shows for ``obj``: the shipped Lua check, in a real Lua interpreter."""
    interpreters = lua_interpreters()
    assert interpreters, "no Lua interpreter (apt-get install lua5.1): Argo CD's health check"
    return health(interpreters[0], HEALTH_CHECK, obj)


def why(system: System, namespace: str) -> str:
    """The suite's status and the end of its Job's log: what a failed expectation needs."""
    suite = system.get("voiceagenttest", "offline-smoke", namespace).get("status")
    try:
        log = system.kubectl("logs", "-n", namespace, "-l", f"{contract.LABEL_COMPONENT}=test",
                             "--tail=60")  # fmt: skip
    except installmod.InstallError as e:
        log = str(e)
    return f"the suite's status: {json.dumps(suite, indent=1)}\nthe run's log:\n{log}"


def suite_jobs(system: System, namespace: str) -> list[dict[str, Any]]:
    jobs = json.loads(
        system.kubectl(
            "get", "jobs", "-n", namespace, "-l", f"{contract.LABEL_COMPONENT}=test", "-o=json"
        )
    )
    return list(jobs["items"])


@pytest.mark.timeout(2400)
def test_each_configuration_is_tested_by_a_job_pod_and_a_bad_change_fails(
    system: System, tested_namespace: str
) -> None:
    ns = tested_namespace
    apply_agent(system, ns, "auto")
    system.kubectl("apply", "-n", ns, "-f", str(SUITE))

    agent = finished_tests(system, ns)
    good = agent["status"]["configHash"]
    tests = agent["status"]["tests"]
    assert (tests["phase"], tests["passed"], tests["failed"]) == ("Passed", 2, 0), why(system, ns)
    assert condition(agent, "Tested")["reason"] == "TestsPassed"
    [first_job] = suite_jobs(system, ns)
    assert first_job["status"].get("succeeded") == 1  # the suite really ran, as a pod
    suite = system.get("voiceagenttest", "offline-smoke", ns)["status"]
    assert suite["configHash"] == good
    assert {c["name"]: c["passed"] for c in suite["cases"]} == {
        "weekday-hours": True,
        "out-of-scope": True,
    }

    # The bad change: the same agent without its grounding guard.
    apply_agent(system, ns, "disabled")
    agent = finished_tests(system, ns, after=good)
    bad = agent["status"]["configHash"]
    tests = agent["status"]["tests"]
    # Without the guard SmolLM2 always answers the question the facts do not cover; it invents
    # the weekday hours on most runs, not all (one CI run of 2026-12-02 got them right).
    failing = set(tests["failing"])
    assert tests["phase"] == "Failed", tests
    assert "offline-smoke/out-of-scope" in failing, tests
    assert failing <= CASES, tests
    assert tests["failed"] == len(failing), tests
    tested = condition(agent, "Tested")
    assert (tested["status"], tested["reason"]) == ("False", "TestsFailed")
    suite_obj = system.get("voiceagenttest", "offline-smoke", ns)
    assert argo_cd_health(suite_obj) == {
        "status": "Degraded",
        "message": f"{len(failing)} of 2 cases failed on configuration {bad}",
    }
    suite = suite_obj["status"]
    reasons = {c["name"]: " ".join(c["reasons"]) for c in suite["cases"]}
    assert "refuses: the reply is not the agent's refusal" in reasons["out-of-scope"], reasons
    if "offline-smoke/weekday-hours" in failing:
        assert "groundedIn" in reasons["weekday-hours"] or "contains" in reasons["weekday-hours"]
    assert [(r["configHash"], r.get("tests")) for r in agent["status"]["revisions"]] == [
        (bad, "Failed"),
        (good, "Passed"),
    ]
    [job] = suite_jobs(system, ns)  # the good configuration's run was superseded: deleted
    assert job["metadata"]["name"] != first_job["metadata"]["name"]
    assert job["status"].get("failed", 0) >= 1  # exit 1: a case failed, not retried
    events = system.kubectl(
        "get", "events", "-n", ns, "--field-selector", "reason=TestsFailed", "-o=json"
    )
    assert any(bad in e["message"] for e in json.loads(events)["items"])

    # In the incident, one command back to the last configuration whose tests passed: the
    # operator applies its kept spec, tests it again (passed), a third revision.
    done = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "rollback", "offline", "-n", ns],
        env={**os.environ, "KUBECONFIG": str(system.kube.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"configuration {good}" in done.stdout
    assert "tests Passed" in done.stdout
    agent = finished_tests(system, ns, after=bad)
    assert agent["spec"]["groundingGuard"]["mode"] == "auto"
    suite_obj = system.get("voiceagenttest", "offline-smoke", ns)
    assert argo_cd_health(suite_obj)["status"] == "Healthy"
    assert agent["status"]["configHash"] == good
    assert agent["status"]["tests"]["phase"] == "Passed"
    assert [(r["configHash"], r.get("tests")) for r in agent["status"]["revisions"]] == [
        (good, "Passed"),
        (bad, "Failed"),
        (good, "Passed"),
    ]
    system.kubectl("delete", "namespace", ns, "--wait=false")
