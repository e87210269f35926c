"""Worker pods sized from the spec (issue 20): default requests and limits for maxCallsPerPod
calls by the measured figures, an explicit amount winning, and ResourcesFit saying when a pod
cannot hold its calls. Pure: no cluster (tests/operator/test_reconcile_voiceagent.py has the
same on a real API server)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from kubernetes.utils.quantity import parse_quantity
from kubevox_api import VoiceAgent, sizing
from kubevox_api.crd import VOICE_AGENT, crd
from kubevox_operator.builders import OperatorDefaults, build_agent_children
from kubevox_operator.builders.sizing import resources_fit, worker_resources
from kubevox_operator.events import Events
from kubevox_operator.status import AgentObservation, agent_status

from tests.support.objects import voice_agent

OFFLINE = {
    "stt": {"provider": "whisper"},
    "llm": {"provider": "local"},
    "tts": {"provider": "piper"},
}


def agent(calls: int = 4, executor: str = "process", **spec: Any) -> VoiceAgent:
    scaling = {"maxCallsPerPod": calls, "targetCallsPerPod": 1, "executor": executor}
    return VoiceAgent.model_validate(voice_agent("ava", "ns", scaling=scaling, **spec))


def mib(q: str) -> float:
    return float(parse_quantity(q)) / 2**20


def cores(q: str) -> float:
    return float(parse_quantity(q))


def test_unset_resources_are_sized_for_max_calls_and_hold_them():
    va = agent(6)
    res = worker_resources(va)
    size = va.spec.pod_size()
    assert res == {
        "requests": {"cpu": size.cpu, "memory": size.memory_request},
        "limits": {"memory": size.memory_limit},  # no CPU limit: it would throttle audio
    }
    assert resources_fit(va, res)[:2] == (True, "ResourcesHoldMaxCalls")
    # The limit leaves the worker's refusal threshold above the working set of its calls.
    f = sizing.FOOTPRINTS[("cloud", "process")]
    assert mib(size.memory_limit) * sizing.MEMORY_FULL >= f.memory_mib(6, 6)
    assert cores(size.cpu) * sizing.CPU_FULL >= f.cores(6)


@pytest.mark.parametrize("executor", ["process", "thread"])
@pytest.mark.parametrize("offline", [False, True])
def test_more_calls_need_more_and_each_size_holds_exactly_its_calls(offline, executor):
    extra = OFFLINE if offline else {}
    sizes = [agent(n, executor, **extra).spec.pod_size() for n in (1, 2, 4, 8, 16)]
    for small, big in itertools.pairwise(sizes):
        assert small.millicores < big.millicores
        assert small.memory_limit_mib <= big.memory_limit_mib
    for n in (1, 2, 4, 8, 16):
        bigger = agent(n + 1, executor, **extra)
        # The resources sized for n calls do not hold n + 1.
        fits, reason, _ = resources_fit(bigger, worker_resources(agent(n, executor, **extra)))
        assert (fits, reason) == (False, "ResourcesBelowMaxCalls")


def test_threads_cost_less_memory_per_call_than_processes():
    proc, thread = agent(8, "process").spec.pod_size(), agent(8, "thread").spec.pod_size()
    assert thread.memory_limit_mib < proc.memory_limit_mib


def test_any_local_provider_sizes_the_pod_as_offline():
    cloud = agent(2).spec
    local_llm = agent(2, llm={"provider": "local"}).spec
    assert not cloud.local_models
    assert local_llm.local_models
    assert local_llm.pod_size() == agent(2, **OFFLINE).spec.pod_size()


def test_explicit_amounts_win_and_unset_ones_stay_consistent_with_them():
    given = {"requests": {"cpu": "3", "memory": "9Gi"}, "limits": {"memory": "10Gi", "cpu": "4"}}
    assert worker_resources(agent(4, resources=given)) == given
    # A limit below the derived request: the request follows the limit (never above it).
    small = worker_resources(agent(4, resources={"limits": {"memory": "512Mi", "cpu": "100m"}}))
    assert small["requests"] == {"cpu": "100m", "memory": "512Mi"}
    # A request above the derived limit: the limit follows the request.
    big = worker_resources(agent(1, resources={"requests": {"memory": "64Gi"}}))
    assert big["limits"]["memory"] == "64Gi"


def test_a_pod_too_small_is_named_with_what_it_holds_and_what_it_needs():
    va = agent(6, resources={"limits": {"memory": "1Gi"}})
    fits, reason, message = resources_fit(va, worker_resources(va))
    assert (fits, reason) == (False, "ResourcesBelowMaxCalls")
    f = sizing.FOOTPRINTS[("cloud", "process")]
    held = max(n for n in range(7) if f.memory_mib(n, 6) <= 1024 * sizing.MEMORY_FULL)
    size = va.spec.pod_size()
    assert message.startswith(f"spec.resources.limits.memory 1Gi hold {held} of the 6 calls")
    assert f"requests.cpu {size.cpu} and limits.memory {size.memory_limit}" in message
    assert "requests.cpu" not in message.split(";")[0]  # the CPU was sized: not named
    cpu_short = agent(6, resources={"requests": {"cpu": "100m"}})
    message = resources_fit(cpu_short, worker_resources(cpu_short))[2]
    assert message.startswith("spec.resources.requests.cpu 100m hold 0 of the 6 calls")
    # Without a memory limit the working set is held to the request.
    req = agent(6, resources={"requests": {"memory": "1Gi"}, "limits": {}})
    res = worker_resources(req)
    assert res["limits"]["memory"] == va.spec.pod_size().memory_limit
    assert resources_fit(req, res)[0] is True  # the derived limit holds them


def test_max_calls_rolls_the_pods_with_their_new_size():
    def deployment(calls: int) -> dict[str, Any]:
        body = voice_agent("ava", "ns", scaling={"maxCallsPerPod": calls, "targetCallsPerPod": 1})
        body["metadata"]["uid"] = "u-1"
        kids = build_agent_children(
            VoiceAgent.model_validate(body), body, {}, OperatorDefaults(image="img:1")
        )
        return next(o for o in kids.objects if o["kind"] == "Deployment")

    def resources(d: dict[str, Any]) -> dict[str, Any]:
        return d["spec"]["template"]["spec"]["containers"][0]["resources"]

    assert resources(deployment(2)) == worker_resources(agent(2))
    assert resources(deployment(2)) != resources(deployment(8))


def test_the_condition_is_in_the_status_and_a_shortfall_posts_a_warning():
    va = agent(6, resources={"limits": {"memory": "1Gi"}})
    fit = resources_fit(va, worker_resources(va))
    status = agent_status(
        AgentObservation(
            generation=3, previous={}, agent_name="a", config_hash="h", resources_fit=fit
        )
    )
    cond = next(c for c in status["conditions"] if c["type"] == "ResourcesFit")
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == ("False", fit[1], 3)
    # Not Degraded: the pods run and take calls, fewer than maxCallsPerPod each.
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "False"

    posted: list[tuple[str, str, str]] = []

    class Recorder(Events):
        def __init__(self) -> None:
            pass

        def event(self, body: Any, type_: str, reason: str, message: str) -> None:
            posted.append((type_, reason, message))

    body = {"kind": "VoiceAgent", "metadata": {"name": "ava", "namespace": "ns"}}
    Recorder().transitions(body, {}, status, "AgentReady")
    assert ("Warning", "ResourcesBelowMaxCalls", fit[2]) in posted
    posted.clear()
    Recorder().transitions(body, status, status, "AgentReady")  # no new shortfall: no event
    assert not any(p[1] == "ResourcesBelowMaxCalls" for p in posted)


def test_the_schema_describes_the_rule_with_its_figures():
    spec = crd(VOICE_AGENT)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    text = spec["spec"]["properties"]["resources"]["description"]
    assert text == sizing.describe()  # kubectl explain voiceagent.spec.resources
    for (stack, executor), f in sizing.FOOTPRINTS.items():
        assert f"{stack} providers with the {executor} executor: {f.base_mib} MiB" in text
