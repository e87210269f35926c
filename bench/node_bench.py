"""The product on a real node (issue 9): how long from `kubectl apply` of the offline sample to
the first call answered by the worker pod, and what a worker pod weighs.

A fresh cluster (kubevox_devenv.cluster: control plane, kubelet, containerd, kube-proxy,
CoreDNS), kubevox installed as `make install` does (the Helm chart, the images built here,
LiveKit and Redis as pods), then, timed from the apply:

* the KnowledgeBase Ready (its ingestion Job ran as a pod),
* the VoiceAgent Ready (its worker pod started, loaded the offline models, registered),
* the first call done: a simulated caller on the host asks one question through LiveKit
  hears the answer (voice-to-voice latency measured on the audio) and hangs up,

and the worker pod's memory from its cgroup (kubelet's cgroupfs layout, cgroup v1) while idle
and right after the call. The cluster and its install are not part of the timed window.

Then the autoscaler's reaction (the sample scaled by KEDA, kubevox_devenv.fleet): one call
held, a second call placed, timed until KEDA asks for a second replica, the second pod is
Ready, and it has registered with LiveKit; both callers hang up, timed until the idle pod is
removed (the scale-down stabilization is 15 s in this sample).

    .venv/bin/python bench/node_bench.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from kubevox_devenv import install as installmod
from kubevox_devenv import node as nodemod
from kubevox_devenv.cgroup import working_set_mib
from kubevox_devenv.cluster import temporary_cluster
from kubevox_devenv.fleet import Fleet, sample_for_this_node

from agent_runtime.caller import CallOptions, SimulatedCall
from agent_runtime.caller.audio import synthesize

NAMESPACE = "bench"
CGROUP_MEMORY = Path("/sys/fs/cgroup/memory/kubepods")


def wait(what: str, probe: Any, timeout: float = 900) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with contextlib.suppress(OSError):
            if probe():
                return time.monotonic()
        time.sleep(0.5)
    raise TimeoutError(what)


def pod_memory_mib(uid: str) -> float:
    """The pod's cgroup memory use (v1: memory.usage_in_bytes less its inactive page cache)."""
    (path,) = [p for p in CGROUP_MEMORY.rglob(f"pod{uid}") if p.is_dir()]
    return working_set_mib(path)


def main() -> int:
    if reason := nodemod.why_not():
        print(f"this machine cannot run a node: {reason}", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="kubevox-node-bench-install-"))
    with temporary_cluster("kubevox-node-bench-") as (plane, node):
        kube = installmod.Kube(plane.kubectl, plane.kubeconfig)
        state = node.state()
        t0 = time.monotonic()
        installmod.install(
            kube, workdir, (Path(str(state["containerd"])), str(state["snapshotter"]))
        )
        installed = time.monotonic() - t0
        keys = installmod.livekit_keys(workdir)
        installmod.dev_secrets(kube, NAMESPACE, keys)

        def get(kind: str, name: str) -> dict[str, Any]:
            out: dict[str, Any] = json.loads(
                kube.run("get", kind, name, f"-n={NAMESPACE}", "-o=json")
            )
            return out

        def ready(kind: str, name: str) -> bool:
            status = get(kind, name).get("status") or {}
            if kind == "knowledgebase":
                return bool(status.get("phase") == "Ready")
            conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
            return conds.get("Ready") == "True"

        applied = time.monotonic()
        kube.run("apply", f"-n={NAMESPACE}", "-f", "-", input=sample_for_this_node())
        kb_ready = wait("KnowledgeBase Ready", lambda: ready("knowledgebase", "clinic-facts"))
        va_ready = wait("VoiceAgent Ready", lambda: ready("voiceagent", "offline"))
        pods = json.loads(
            kube.run(
                "get", "pods", f"-n={NAMESPACE}", "-l=app.kubernetes.io/instance=offline", "-o=json"
            )
        )["items"]
        uid = pods[0]["metadata"]["uid"]
        pod_ip = pods[0]["status"]["podIP"]
        registered = wait("worker registered", lambda: installmod.worker_registered(pod_ip))
        idle_mib = pod_memory_mib(uid)
        options = installmod.host_caller(kube, workdir, NAMESPACE, "offline")
        question = synthesize("When does the pharmacy open on Saturdays?")
        result = asyncio.run(SimulatedCall(options).run([question]))
        answered = time.monotonic()
        after_mib = pod_memory_mib(uid)
        turn = result.turns[0]
        report = {
            "install_seconds": round(installed, 1),
            "apply_to_kb_ready_seconds": round(kb_ready - applied, 1),
            "apply_to_agent_ready_seconds": round(va_ready - applied, 1),
            "apply_to_worker_registered_seconds": round(registered - applied, 1),
            "apply_to_first_call_done_seconds": round(answered - applied, 1),
            "first_turn_latency_ms": turn.latency_ms,
            "heard": turn.heard,
            "worker_pod_memory_idle_mib": round(idle_mib, 1),
            "worker_pod_memory_after_call_mib": round(after_mib, 1),
        }
        fleet = Fleet(kube, NAMESPACE, "offline")
        report |= asyncio.run(scale_up_and_down(fleet, options))
        kube.run(
            "patch", "voiceagent", "offline", f"-n={NAMESPACE}", "--type=merge",
            "-p", json.dumps({"spec": {"scaling": {"minReplicas": 0}}}),
        )  # fmt: skip
        report |= asyncio.run(scale_from_zero(fleet, options))
        print(json.dumps(report, indent=2))
    return 0 if result.error is None else 1


async def until(what: str, probe: Any, within: float = 600) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within:
        with contextlib.suppress(OSError):
            if await asyncio.to_thread(probe):
                return time.monotonic()
        await asyncio.sleep(0.5)
    raise TimeoutError(what)


async def scale_up_and_down(fleet: Fleet, options: CallOptions) -> dict[str, float]:
    (first,) = [p["metadata"]["name"] for p in fleet.pods()]
    held = SimulatedCall(options, index=1)
    await held.start()
    await until("the first call counted", lambda: fleet.calls_by_pod() == {first: 1})
    second = SimulatedCall(options, index=2)
    placed = time.monotonic()
    await second.start()
    answered = time.monotonic()
    asked = await until("KEDA asking for 2 replicas", lambda: fleet.replicas() == 2)
    ready = await until("2 ready workers", lambda: fleet.status().get("readyReplicas") == 2)
    registered = await until("2 registered workers", lambda: len(fleet.registered()) == 2)
    await second.hang_up()
    await held.hang_up()
    hung_up = time.monotonic()
    removed = await until("back to 1 worker", lambda: len(fleet.pods()) == 1)
    return {
        "second_call_answered_seconds": round(answered - placed, 1),
        "second_call_to_2_replicas_asked_seconds": round(asked - placed, 1),
        "second_call_to_second_pod_ready_seconds": round(ready - placed, 1),
        "second_call_to_second_pod_registered_seconds": round(registered - placed, 1),
        "calls_ended_to_idle_pod_removed_seconds": round(removed - hung_up, 1),
    }


async def scale_from_zero(fleet: Fleet, options: CallOptions) -> dict[str, float]:
    """minReplicas 0 (patched in): no pod once idle; then a caller waits for one."""
    await until("no worker pod", lambda: not fleet.pods() and fleet.replicas() == 0)
    call = SimulatedCall(replace(options, greeting_timeout=300.0), index=3)
    placed = time.monotonic()
    started = asyncio.create_task(call.start())
    counted = await until("the waiting call counted", lambda: fleet.status().get("waitingCalls"))
    asked = await until("KEDA asking for 1 replica", lambda: fleet.replicas() == 1)
    ready = await until("1 ready worker", lambda: fleet.status().get("readyReplicas") == 1)
    result = await started
    greeted = time.monotonic()
    await call.hang_up()
    if not result.greeting:
        raise RuntimeError(f"the call placed at zero pods was not answered: {result.error}")
    return {
        "from_zero_call_to_waiting_counted_seconds": round(counted - placed, 1),
        "from_zero_call_to_1_replica_asked_seconds": round(asked - placed, 1),
        "from_zero_call_to_pod_ready_seconds": round(ready - placed, 1),
        "from_zero_call_to_greeting_seconds": round(greeted - placed, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
