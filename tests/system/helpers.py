"""What the system tests share: the sample's question, placing calls with the host's caller,
and looking at the agent's web gateway."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
from kubernetes.utils.quantity import parse_quantity
from kubevox_api import VoiceAgent, contract
from kubevox_devenv import install as installmod

from agent_runtime.caller import CallOptions, SimulatedCall

from .conftest import System
from .diagnostics import worker_log_lines

PHARMACY = "When does the pharmacy open on Saturdays?"
WORKER_LOAD = "kubevox_worker_load"  # agent_runtime.metrics
SITE = "https://www.clinic.example"
"""The site whose pages may start calls at the sample's web gateway (spec.web)."""


def check_sized_by_the_operator(agent: dict[str, Any], pod: dict[str, Any]) -> None:
    """The worker's memory limit is the operator's, sized for the sample's calls (issue 20):
    the calls of the system tests run under it. The CPU request is the one this 2-core node
    fits, below the sizing: ResourcesFit says so."""
    size = VoiceAgent.model_validate(agent).spec.pod_size()
    limit = pod["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert parse_quantity(limit) == parse_quantity(size.memory_limit)
    fit = condition(agent, "ResourcesFit")
    assert (fit["status"], fit["reason"]) == ("False", "ResourcesBelowMaxCalls")
    assert fit["message"].startswith("spec.resources.requests.cpu 200m hold ")


def condition(obj: dict[str, Any], kind: str) -> dict[str, str]:
    conditions = (obj.get("status") or {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


def peak_of_the_scaling_query(system: System, namespace: str, since: float) -> float | None:
    """The highest value the agent's ScaledObject query (KEDA's own, read off the object) took
    since ``since`` (time.monotonic()), evaluated every second over Prometheus' samples."""
    scaled = system.get("scaledobject", "offline", namespace)
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    seconds = int(time.monotonic() - since) + 1
    return system.prometheus(f"max_over_time(({query})[{seconds}s:1s])")


def caller_options(system: System, namespace: str) -> CallOptions:
    return installmod.host_caller(system.kube, system.workdir, namespace, "offline")


async def place_call(
    system: System, namespace: str, live: dict[str, SimulatedCall], name: str
) -> None:
    call = SimulatedCall(caller_options(system, namespace), index=len(live))
    live[name] = call
    result = await call.start()
    if not result.greeting:
        loads = system.prometheus(f"max(max_over_time({WORKER_LOAD}[90s]))")
        raise AssertionError(
            f"the {name} call was not answered (no greeting); the workers' highest load in the"
            f" last 90 s: {loads}; what the workers logged of note:\n"
            + worker_log_lines(system, result.room)
        )


async def post_call(
    http: aiohttp.ClientSession, url: str, origin: str
) -> tuple[int, dict[str, Any]]:
    """``POST /v1/calls`` at a web gateway, as a page of ``origin`` would."""
    async with http.post(f"{url}/v1/calls", json={}, headers={"Origin": origin}) as resp:
        return resp.status, await resp.json()


def set_web(system: System, namespace: str, web: dict[str, Any] | None) -> None:
    """Adds spec.web to the sample (or removes it: None), as a platform team would."""
    if web is None:
        patch = ["--type=json", "-p", json.dumps([{"op": "remove", "path": "/spec/web"}])]
    else:
        patch = ["--type=merge", "-p", json.dumps({"spec": {"web": web}})]
    system.kubectl("patch", "voiceagent", "offline", "-n", namespace, *patch)


def gateway_confinement(system: System, namespace: str, pod: dict[str, Any]) -> list[str]:
    """What the gateway pod may do that it should not: it holds the LiveKit secret only."""
    spec = pod["spec"]
    problems = []
    if spec.get("automountServiceAccountToken") is not False or any(
        "projected" in v for v in spec["volumes"]
    ):
        problems.append("a Kubernetes API token is mounted")
    if spec["securityContext"].get("runAsNonRoot") is not True:
        problems.append("it may run as root")
    policy = system.get("networkpolicy", "offline-web-egress", namespace)["spec"]
    if policy["policyTypes"] != ["Egress"] or policy.get("egress"):
        problems.append(f"its NetworkPolicy allows egress: {policy}")
    return problems


def gateway_url(system: System, namespace: str) -> str:
    """The sample's web gateway, through its Service (kube-proxy makes it reachable here)."""
    jsonpath = "-o=jsonpath={.spec.clusterIP}"
    return f"http://{system.kubectl('get', 'service', 'offline-web', '-n', namespace, jsonpath)}"


def _gateway_pods(system: System, namespace: str) -> list[dict[str, Any]]:
    selector = f"{contract.LABEL_WEB_GATEWAY}=offline"
    out = system.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o=json")
    pods: list[dict[str, Any]] = json.loads(out)["items"]
    return pods


def ready_gateway_pod(system: System, namespace: str) -> dict[str, Any] | None:
    ready = [
        p for p in _gateway_pods(system, namespace) if condition(p, "Ready").get("status") == "True"
    ]
    return ready[0] if ready else None


def gateway_objects_left(system: System, namespace: str) -> bool:
    """The sample's web gateway: any of its objects or pods still there."""
    names = [
        system.kubectl("get", kind, name, "-n", namespace, "--ignore-not-found", "-o=name")
        for kind, name in (
            ("deployment", "offline-web"),
            ("service", "offline-web"),
            ("networkpolicy", "offline-web-egress"),
        )
    ]
    return any(n.strip() for n in names) or bool(_gateway_pods(system, namespace))
