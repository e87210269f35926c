"""The offline sample on a real node, through the Helm-installed operator: the ingestion Job and
the worker run as pods, a caller on the host is answered by the pod the operator made, spec.web
runs the agent's web gateway pod (whose token starts a call the worker answers) and removes it,
active calls scale the workers up and down through Prometheus and KEDA, a rollout drains a live
call instead of cutting it, Argo CD's health check follows, with minReplicas 0 the agent scales
to zero and a caller waits for a pod and is answered, and deleting the VoiceAgent removes
everything it owned. The tests run in file order and share the sample's objects."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubevox_api import contract
from kubevox_devenv import install as installmod
from kubevox_devenv.fleet import SAMPLE, Fleet, sample_for_this_node
from kubevox_devenv.worker import call_record

from agent_runtime.caller import SimulatedCall
from agent_runtime.caller.audio import synthesize
from tests.support.lua import health
from tests.support.tools import lua_interpreters

from .caller_sentiment import check_sentiment
from .conftest import PodHistory, PodRecord, System, await_until, wait_until
from .diagnostics import WORKER_LABEL, pod_log_tails, scaling_state
from .helpers import (
    PHARMACY,
    SITE,
    caller_options,
    check_sized_by_the_operator,
    condition,
    gateway_confinement,
    gateway_objects_left,
    gateway_url,
    peak_of_the_scaling_query,
    place_call,
    post_call,
    ready_gateway_pod,
    set_web,
)
from .usage_cost import check_usage_and_cost

INTERPRETERS = lua_interpreters()

REPO = Path(__file__).resolve().parents[2]


# The first test also pays for the session's cluster and install (images loaded, Helm): minutes.
@pytest.mark.timeout(1500)
def test_the_sample_turns_ready_with_its_pods(system: System, namespace: str) -> None:
    system.kubectl("apply", "-n", namespace, "-f", "-", input=sample_for_this_node())

    def kb_ready() -> dict[str, Any] | None:
        kb = system.get("knowledgebase", "clinic-facts", namespace)
        return kb if (kb.get("status") or {}).get("phase") == "Ready" else None

    def agent_ready() -> dict[str, Any] | None:
        agent = system.get("voiceagent", "offline", namespace)
        return agent if condition(agent, "Ready").get("status") == "True" else None

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
    check_sized_by_the_operator(agent, pods[0])

    # Ready follows the pod's readiness probe, which livekit-agents answers before the worker
    # has registered; a call placed before registration is never dispatched.
    pod_ip = pods[0]["status"]["podIP"]
    wait_until("the worker registered", lambda: installmod.worker_registered(pod_ip), 300)


@pytest.mark.timeout(600)
async def test_a_caller_is_answered_from_the_knowledge_base_by_the_pod(
    system: System, namespace: str
) -> None:
    result = await SimulatedCall(caller_options(system, namespace)).run([synthesize(PHARMACY)])
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
        return call_record(system.kubectl("logs", "-n", namespace, name).splitlines(), result.room)

    call = wait_until(f"the call record of {result.room} in {name}'s log", record, timeout=60)
    assert call["worker"] == name
    assert call["namespace"] == namespace
    assert call["turns"] >= 2  # the greeting and the answer
    # The configuration it ran with, as status tells it; who called; what the models used.
    agent = system.get("voiceagent", "offline", namespace)
    assert (call["config_hash"], call["caller"]) == (agent["status"]["configHash"], "web")
    usage = {u["type"]: u for u in call["usage"]}
    assert usage["stt_usage"]["audio_duration"] > 0, usage
    # What the models used reaches Prometheus, and priced, the dashboard's estimated cost.
    print(f"\nthe call's estimated cost: {check_usage_and_cost(system, namespace, call):.6g}")
    # How the caller felt, scored in the pod, on the dashboard.
    check_sentiment(system, namespace, call)


@pytest.mark.timeout(900)
async def test_a_browser_caller_s_call_starts_at_the_agent_s_web_gateway_pod(
    system: System, namespace: str, fleet: Fleet
) -> None:
    """spec.web: the operator runs the agent's web gateway as a pod (restricted, no API token,
    no egress) behind a Service; its token starts a call the worker pod answers; a page from
    another site is refused; the workers did not roll for it; removing spec.web removes it."""
    workers = {p["metadata"]["name"] for p in fleet.pods()}
    web = {"livekitURL": system.livekit_url(), "allowedOrigins": [SITE], "title": "Clinic"}
    set_web(system, namespace, web)

    pod = await await_until(
        "the web gateway pod Ready", lambda: ready_gateway_pod(system, namespace), 300
    )
    assert gateway_confinement(system, namespace, pod) == []

    url = gateway_url(system, namespace)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(f"{url}/") as resp:
            assert "<title>Clinic</title>" in await resp.text()
        status, refused = await post_call(http, url, "https://evil.example")
        assert status == 403, refused
        status, call = await post_call(http, url, SITE)
    assert status == 201, call
    assert call["url"] == system.livekit_url()

    options = replace(
        caller_options(system, namespace), api_key="", api_secret="", agent_name="",
        grant=(call["room"], call["token"]),
    )  # fmt: skip
    result = await SimulatedCall(options).run([synthesize(PHARMACY)])
    assert result.error is None, result.error
    assert "saturday" in result.turns[0].heard.lower(), result.turns[0].heard
    # spec.web is not in the workers' config: they did not roll (and drain their calls) for it.
    assert {p["metadata"]["name"] for p in fleet.pods()} == workers
    set_web(system, namespace, None)
    await await_until(
        "the web gateway's objects and pod removed",
        lambda: not gateway_objects_left(system, namespace),
        180,
    )


@pytest.mark.timeout(900)
async def test_active_calls_scale_the_workers_up_through_prometheus_and_keda(
    system: System,
    namespace: str,
    live_calls: dict[str, SimulatedCall],
    pod_history: PodHistory,
    fleet: Fleet,
) -> None:
    # The operator made a ScaledObject; the only HPA is the one KEDA made from it.
    scaled = system.get("scaledobject", "offline", namespace)
    assert scaled["spec"]["triggers"][0]["type"] == "prometheus"
    hpas = system.kubectl("get", "hpa", "-n", namespace, "-o=name").split()
    assert hpas == ["horizontalpodautoscaler.autoscaling/keda-hpa-offline"], hpas
    (first,) = [p["metadata"]["name"] for p in fleet.pods()]

    # targetCallsPerPod 1, maxCallsPerPod 2: the first pod takes the second call too, and that
    # is the signal for a second pod. (With no headroom, maxCallsPerPod 1, the second caller
    # would wait, counted by the operator, for the second pod to start.)
    await place_call(system, namespace, live_calls, "first")
    await await_until("the first call counted", lambda: fleet.calls_by_pod() == {first: 1}, 60)
    placed = time.monotonic()
    await place_call(system, namespace, live_calls, "second")
    total = f'sum({contract.ACTIVE_CALLS_METRIC}{{namespace="{namespace}",agent="offline"}})'
    await await_until(
        "Prometheus counting 2 active calls", lambda: system.prometheus(total) == 2, 60
    )
    await await_until(
        "a second worker registered",
        lambda: [n for n in fleet.registered() if n != first],
        300,
    )
    print(
        f"scale-up: call 2 placed -> a second pod registered in {time.monotonic() - placed:.0f} s"
    )
    # No pod takes more than 2 calls, and KEDA asks for a third pod (3 calls / 1 per pod;
    # maxReplicas 3). Within 180 s: with pods loading models the API server is slow.
    await place_call(system, namespace, live_calls, "third")
    await await_until(
        "the three calls counted, no pod above maxCallsPerPod (2)",
        lambda: sum(c := fleet.calls_by_pod().values()) == 3 and max(c) <= 2,
        180,
        lambda: scaling_state(system, namespace, fleet),
    )
    await await_until("3 replicas", lambda: fleet.replicas() == 3, 120)
    # What KEDA read never counted a call twice (as waiting and as taken, docs/operator.md).
    assert peak_of_the_scaling_query(system, namespace, placed) == 3
    # The status counts them all: 3 calls, 3 pods (the third one may still be starting).
    statuses: list[dict[str, Any]] = []

    def status_counts_them() -> bool:
        statuses.append(fleet.status())
        return statuses[-1].get("activeCalls") == 3 and statuses[-1].get("replicas") == 3

    await await_until(
        "status.activeCalls 3, status.replicas 3", status_counts_them, 180,
        lambda: f"status {statuses[-1:]}, calls {fleet.calls_by_pod()}",
    )  # fmt: skip
    await await_until("3 ready workers", lambda: fleet.status().get("readyReplicas") == 3, 300)


@pytest.mark.timeout(600)
async def test_calls_ending_scale_down_idle_pods_first(
    system: System,
    namespace: str,
    live_calls: dict[str, SimulatedCall],
    pod_history: PodHistory,
    fleet: Fleet,
) -> None:
    for name, want in (("third", 2), ("second", 1)):
        await live_calls.pop(name).hang_up()
        await await_until(
            f"{want} worker pods after the {name} call ended",
            lambda want=want: fleet.replicas() == want == len(fleet.pods()), 240,
            lambda: scaling_state(system, namespace, fleet),
        )  # fmt: skip
    # The pods removed were idle when chosen, and exited 0; the call left up is still served.
    removed = [r for r in pod_history.pods.values() if r.deleting_at is not None]
    assert len(removed) == 2, removed
    for record in removed:
        assert record.calls_when_deleted == "0", record

        def gone(r: PodRecord = record) -> float | None:
            return r.gone_at

        await await_until(f"{record.name} gone", gone, 120)
        assert record.exit_code == 0, record
    # One pod is left and it serves the call left up (moved only if the caller's connection
    # broke under load and the operator handed the room to a worker again).
    assert sorted(fleet.calls_by_pod().values()) == [1], live_calls["first"].events


@pytest.mark.timeout(900)
async def test_a_rollout_drains_the_live_call_and_argo_cd_follows(
    system: System,
    namespace: str,
    live_calls: dict[str, SimulatedCall],
    pod_history: PodHistory,
    fleet: Fleet,
) -> None:
    assert INTERPRETERS, "no Lua interpreter (apt-get install lua5.1): Argo CD's health check"
    health_lua = REPO / "manifests/argocd/health/kubevox.dev/VoiceAgent/health.lua"

    seen: list[dict[str, str]] = []

    def argo_health() -> str:
        agent = system.get("voiceagent", "offline", namespace)
        seen.append(health(INTERPRETERS[0], health_lua, agent))
        return seen[-1]["status"]

    # A metric read that failed during the scaling (KEDA's HPA says so) shows as Degraded until
    # KEDA's next look at its HPA, every pollingInterval: wait for the steady state.
    await await_until(
        "Argo CD health Healthy", lambda: argo_health() == "Healthy", 120,
        lambda: f"the check said {seen[-1]}",
    )  # fmt: skip
    (old,) = fleet.calls_by_pod()
    system.kubectl(
        "patch", "voiceagent", "offline", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"instructions": "You are the front desk of Northwind Clinic. "
                                   "Answer in one short sentence from the clinic information."}}),
    )  # fmt: skip
    await await_until("Argo CD health Progressing", lambda: argo_health() == "Progressing", 60)
    await await_until(
        "a new worker registered while the old one drains",
        lambda: [n for n in fleet.registered() if n != old],
        300,
    )
    draining = pod_history.by_name(old)
    await await_until("the old pod draining", lambda: draining.deleting_at, 120)
    assert draining.calls_when_deleted == "1", live_calls["first"].events

    # The call goes on on the draining pod: the caller asks, and is answered.
    call = live_calls.pop("first")
    turn = await call.turn(synthesize(PHARMACY))
    assert "saturday" in turn.heard.lower(), turn
    assert draining.gone_at is None, "the draining pod went away during its call"
    await call.hang_up()
    await await_until("the drained pod gone", lambda: draining.gone_at, 120)
    assert draining.exit_code == 0, draining
    grace = 300 + contract.DRAIN_MARGIN_SECONDS
    assert draining.gone_at is not None
    assert draining.deleting_at is not None
    assert draining.gone_at - draining.deleting_at < grace
    await await_until("Argo CD health Healthy again", lambda: argo_health() == "Healthy", 120)


@pytest.mark.timeout(900)
async def test_scaled_to_zero_a_call_waits_for_a_pod_and_is_answered(
    system: System, namespace: str, fleet: Fleet
) -> None:
    """minReplicas 0: once the calls stayed at 0 for the stabilization window, no pod runs; a
    caller then waits, counted by the operator (status.waitingCalls, kubevox_waiting_calls),
    KEDA starts a pod, the operator hands the call to it, and the caller is answered."""
    system.kubectl(
        "patch", "voiceagent", "offline", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"scaling": {"minReplicas": 0}}}),
    )  # fmt: skip
    scaled = await await_until(
        "status ScaledToZero and no worker pod",
        lambda: (
            (st := fleet.status())
            and condition({"status": st}, "Ready").get("reason") == "ScaledToZero"
            and not fleet.pods()
            and st
        ),
        300,
    )
    assert scaled["replicas"] == 0, scaled
    assert scaled["waitingCalls"] == 0, scaled
    assert system.get("scaledobject", "offline", namespace)["spec"]["minReplicaCount"] == 0

    seen: list[dict[str, Any]] = []

    def waiting_seen() -> bool:
        seen.append(fleet.status())
        return seen[-1].get("waitingCalls") == 1

    options = replace(caller_options(system, namespace), greeting_timeout=240.0)
    call = SimulatedCall(options)
    placed = time.monotonic()
    answered = asyncio.create_task(call.start())
    try:
        await await_until("status.waitingCalls 1 while no worker runs", waiting_seen, 60)
        ready = condition({"status": seen[-1]}, "Ready")
        assert ready.get("reason") == "ScalingFromZero", seen[-1]
        waiting = (
            f'{contract.WAITING_CALLS_METRIC}{{agent_namespace="{namespace}",agent="offline"}}'
        )
        await await_until(
            "Prometheus reading 1 waiting call", lambda: system.prometheus(waiting) == 1, 60
        )
        result = await answered
        assert result.greeting, f"the call was not answered after a start from zero: {result.error}"
        print(f"scale from zero: call placed -> greeted in {time.monotonic() - placed:.0f} s")
        # One worker serves it, and what KEDA read never counted the call twice.
        assert peak_of_the_scaling_query(system, namespace, placed) == 1
        await await_until(
            "the call counted by exactly one worker",
            lambda: sum(max(n, 0) for n in fleet.calls_by_pod().values()) == 1,
            60,
        )
        await await_until(
            "status.waitingCalls 0", lambda: fleet.status().get("waitingCalls") == 0, 60
        )
    finally:
        await call.hang_up()


@pytest.mark.timeout(600)
def test_deleting_the_agent_removes_what_it_owned(system: System, namespace: str) -> None:
    owned = ("deployment", "scaledobject", "configmap", "service", "poddisruptionbudget")
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

    try:
        wait_until("the VoiceAgent's children and pods garbage-collected", gone, timeout=180)
    except AssertionError as e:
        left = system.kubectl(
            "get", "all,configmap,pdb", "-n", namespace, "-l", WORKER_LABEL, "-o=wide"
        )  # fmt: skip
        raise AssertionError(f"{e}\nleft:\n{left}\n{pod_log_tails(system, namespace)}") from None
    system.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=180s")
    names = system.kubectl("get", "namespaces", "-o=name").split()
    assert f"namespace/{namespace}" not in names
