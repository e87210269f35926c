"""`make run` where this machine can run a node: kubevox on a real one-node cluster.

1. The cluster (control plane, kubelet, containerd, kube-proxy, CoreDNS) and kubevox installed
   the way users install it (`make install`: the Helm chart with the images built here, and
   LiveKit, Redis, Prometheus and KEDA as pods).
2. The offline sample applied with kubectl: its ingestion Job and its worker run as pods.
3. A caller on the host asks a question; the worker pod answers from the knowledge base.
4. Calls come and go, and the workers follow them: a table of time, calls and replicas.
5. The agent takes browser callers (spec.web): its web gateway runs as a pod, and its call page
   is served on http://localhost:8080/ (a relay to the gateway's Service, kubevox_devenv.
   webforward), where a person on this machine can call the agent.

The cluster keeps running afterwards; `make cluster-down` stops it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from . import webforward
from .cluster import down, running_node, up
from .controlplane import REPO
from .fleet import Fleet, sample_for_this_node
from .install import (
    Kube,
    dev_secrets,
    host_caller,
    install,
    livekit_host_url,
    livekit_keys,
    node_containerd,
)
from .procs import free_port
from .worker import call_record

STATE = REPO / ".kubevox"
NAMESPACE = "kubevox-demo"
AGENT = "offline"
QUESTION = "When does the pharmacy open on Saturdays?"
PAGE_PORT = 8080


def _step(title: str) -> None:
    print(f"\n\033[1m==> {title}\033[0m", flush=True)


def _show(kube: Kube, *args: str) -> None:
    print(f"$ kubectl {' '.join(args)}", flush=True)
    print(kube.run(*args).rstrip(), flush=True)


def _wait(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


class ScaleTable:
    """Prints a row whenever the calls, the replicas asked for, or the ready workers change."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.start = time.monotonic()
        self.last: tuple[object, ...] | None = None
        print(f"{'time':>6}  {'calls':>5}  {'replicas':>8}  {'ready':>5}  event", flush=True)

    def sample(self, event: str = "") -> tuple[int, int, int]:
        status = self.fleet.status()
        row = (
            int(status.get("activeCalls") or 0),
            self.fleet.replicas(),
            int(status.get("readyReplicas") or 0),
        )
        if row != self.last or event:
            elapsed = time.monotonic() - self.start
            print(f"{elapsed:>5.0f}s  {row[0]:>5}  {row[1]:>8}  {row[2]:>5}  {event}", flush=True)
            self.last = row
        return row

    async def until(self, done: Callable[[tuple[int, int, int]], bool], within: float) -> None:
        """Sample until ``done(row)``; in a thread, so the callers' audio keeps flowing."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await asyncio.to_thread(lambda: done(self.sample())):
                return
            await asyncio.sleep(1)
        raise SystemExit(f"the workers did not follow the calls within {within:.0f} s")


async def _scale(kube: Kube, fleet: Fleet) -> None:
    from agent_runtime.caller import SimulatedCall

    options = host_caller(kube, STATE, NAMESPACE, AGENT)
    table = ScaleTable(fleet)
    calls: list[SimulatedCall] = []
    # targetCallsPerPod 1, maxCallsPerPod 2: each call beyond the first asks for one more pod.
    for want in (1, 2, 3):
        call = SimulatedCall(options, index=want)
        calls.append(call)
        await call.start()
        await asyncio.to_thread(table.sample, f"call {want} answered")

        def followed(row: tuple[int, int, int], want: int = want) -> bool:
            # The next call needs a registered worker with room (LiveKit does not queue calls).
            return row[0] == want == row[2] and len(fleet.registered()) == want

        await table.until(followed, 300)
    # The HPA removes one idle pod a minute (the operator's scale-down policy).
    while calls:
        await calls.pop().hang_up()
        await asyncio.to_thread(table.sample, "a caller hung up")

        def scaled_down(row: tuple[int, int, int], calls_left: int = len(calls)) -> bool:
            return row[0] == calls_left and row[1] == max(calls_left, 1)  # minReplicas 1

        await table.until(scaled_down, 300)
    await table.until(lambda row: row[2] == 1, 120)


def _call(kube: Kube, fleet: Fleet) -> int:
    from agent_runtime.caller import SimulatedCall
    from agent_runtime.caller.audio import synthesize
    from agent_runtime.caller.report import table

    result = asyncio.run(
        SimulatedCall(host_caller(kube, STATE, NAMESPACE, AGENT)).run([synthesize(QUESTION)])
    )
    print(table([result]))

    def logged() -> tuple[str, dict[str, Any]] | None:
        for pod in fleet.pods():
            name = pod["metadata"]["name"]
            lines = kube.run("logs", "-n", NAMESPACE, name).splitlines()
            if (record := call_record(lines, result.room)) is not None:
                return name, record
        return None

    name, record = _wait("the call record in the worker's log", logged, 60)
    print(f"\nthe call record, from the log of pod {name}:")
    print(json.dumps(record, indent=2))
    return 0 if result.error is None and all(t.heard for t in result.turns) else 1


def _page_port() -> int:
    """8080 on localhost when it is free, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", PAGE_PORT))
        except OSError:
            return free_port()
    return PAGE_PORT


def _web(kube: Kube) -> str:
    """spec.web on the sample: the operator runs its web gateway; its page on localhost."""
    web = {
        "spec": {
            "web": {
                # Browsers on this machine reach LiveKit at its Service's address.
                "livekitURL": livekit_host_url(kube),
                "title": "Northwind Clinic",
            }
        }
    }
    patch = json.dumps(web)
    print(f"$ kubectl patch voiceagent {AGENT} -n {NAMESPACE} --type=merge -p '{patch}'")
    print(kube.run("patch", "voiceagent", AGENT, "-n", NAMESPACE, "--type=merge", "-p", patch))
    name = f"{AGENT}-web"

    def available() -> bool:
        dep = json.loads(kube.run("get", "deployment", name, "-n", NAMESPACE, "-o=json") or "{}")
        return bool((dep.get("status") or {}).get("availableReplicas"))

    _wait(f"the web gateway (Deployment {name}) available", available, 300)
    _show(kube, "get", "deployment,service", name, "-n", NAMESPACE)
    ip = kube.run("get", "service", name, "-n", NAMESPACE, "-o=jsonpath={.spec.clusterIP}")
    port = _page_port()
    webforward.start(STATE, port, f"{ip}:80")
    page = f"http://localhost:{port}/"

    def served() -> bool:
        with urllib.request.urlopen(page, timeout=5) as resp:
            return b"livekit-client" in resp.read()

    _wait(f"the call page on {page}", lambda: _quietly(served), 60)
    return page


def _quietly(probe: Callable[[], bool]) -> bool:
    try:
        return probe()
    except OSError:
        return False


def main() -> int:
    _step("A one-node cluster: control plane, kubelet, containerd, kube-proxy, CoreDNS")
    if running_node(STATE) is None:
        down(STATE, quiet=True)  # a control plane without a node (make cluster-up elsewhere)
    up(STATE, crds=False, node=True)
    kube = Kube.of(STATE)

    _step("kubevox installed as users install it (Helm), with LiveKit, Redis, Prometheus, KEDA")
    install(kube, STATE, node_containerd(STATE))
    _show(kube, "get", "pods", "-A")

    _step(f"The offline sample, scaled by KEDA on active calls, in namespace {NAMESPACE}")
    dev_secrets(kube, NAMESPACE, livekit_keys(STATE))
    print(f"$ kubectl apply -n {NAMESPACE} -f manifests/samples/offline-agent.yaml  # + keda")
    print(kube.run("apply", "-n", NAMESPACE, "-f", "-", input=sample_for_this_node()).rstrip())
    fleet = Fleet(kube, NAMESPACE, AGENT)
    _wait("the worker registered with LiveKit", fleet.registered, 900)
    _show(kube, "get", "voiceagents,knowledgebases,scaledobjects,pods", "-n", NAMESPACE)

    _step(f"A caller on the host dials the agent and asks: {QUESTION!r}")
    status = _call(kube, fleet)

    _step("Calls come and go; KEDA follows kubevox_active_calls through Prometheus")
    asyncio.run(_scale(kube, fleet))

    _step("Browser callers: spec.web gives the agent a call page and a token endpoint")
    page = _web(kube)
    print(
        f"\n\033[1mCall the agent from a browser on this machine: {page}\033[0m\n"
        "(press Call, allow the microphone, and ask when the pharmacy opens on Saturdays)"
    )
    print(
        "\nThe cluster keeps running. Explore it with:\n"
        f"  export KUBECONFIG={(STATE / 'kubeconfig').resolve()}\n"
        f"  .kubevox/kubectl get voiceagents,pods -n {NAMESPACE}\n"
        "Stop it with: make cluster-down"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
