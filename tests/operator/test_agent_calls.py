"""Two namespaces, one VoiceAgent name, one LiveKit server (issue #15): every call dispatched to
namespace A's agent is served by A's workers. The operator (a real process on the real API
server) renders each agent's runtime config; a real `kubevox-agent start` worker per namespace
runs it, as its pod would, against a real LiveKit server; simulated callers dispatch to the
name A's status reports."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from kubevox_api import CONFIG_FILE
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.worker import AgentWorker, call_records

from agent_runtime.caller import CallOptions, SimulatedCall
from tests.support.kube import Kubectl, wait_for
from tests.support.objects import voice_agent
from tests.support.operator_process import OperatorProcess

pytestmark = [pytest.mark.cluster, pytest.mark.e2e, pytest.mark.voice]
Obj = dict[str, Any]
CALLS = 2
"""As many as the worker keeps idle processes for (two on this machine's 2 cores): a third call
waits for a new process to load the offline models, which took over the 90 s greeting timeout
when the machine was loaded (seen in CI). Each call could go to B's worker, registered first,
were the names shared."""


def offline_agent(ns: str, url: str, greeting: str) -> Obj:
    """An agent whose workers need no provider: whisper and piper in the worker; the language
    model is never asked (the calls only hear the greeting)."""
    return voice_agent(
        "support",
        ns,
        greeting=greeting,
        livekit={"url": url, "credentialsSecretRef": {"name": "livekit"}},
        stt={"provider": "whisper"},
        llm={"provider": "openai", "model": "unused", "baseURL": "http://127.0.0.1:9/v1"},
        tts={"provider": "piper"},
        turnDetection={"mode": "vad"},
    )


def livekit_secret(ns: str, server: LiveKitServer) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "livekit", "namespace": ns},
        "stringData": {"apiKey": server.api_key, "apiSecret": server.api_secret},
    }


def worker_for(k: Kubectl, ns: str, server: LiveKitServer, workdir: Path) -> AgentWorker:
    """A worker running exactly the runtime config the operator rendered for ns/support."""
    cm = wait_for(f"{ns}'s config", lambda: k.get("configmap", "support-config", ns))
    config = workdir / f"{ns}.json"
    config.write_text(cm["data"][CONFIG_FILE])
    env = {**server.env(), "KUBEVOX_CPU_LOAD_WEIGHT": "0"}
    return AgentWorker(config, env, workdir / f"{ns}.log").start()


@pytest.mark.timeout(900)
def test_calls_to_one_namespaces_agent_reach_only_its_workers(
    kubectl: Kubectl,
    namespace: str,
    operator: OperatorProcess,
    livekit: LiveKitServer,
    tmp_path: Path,
) -> None:
    a, b = namespace, f"{namespace}-b"
    kubectl("create", "namespace", b)
    workers: list[AgentWorker] = []
    try:
        for ns, greeting in ((a, "Welcome to the bakery."), (b, "Welcome to the garage.")):
            kubectl.apply(livekit_secret(ns, livekit))
            kubectl.apply(offline_agent(ns, livekit.url, greeting))

        def agent_name(ns: str) -> str | None:
            va = kubectl.get("voiceagent", "support", ns) or {}
            return (va.get("status") or {}).get("agentName")

        name_a = wait_for("A's agent name", lambda: agent_name(a))
        name_b = wait_for("B's agent name", lambda: agent_name(b))
        assert name_a != name_b, "two namespaces' agents would share calls"

        # B's worker first: were the names shared, LiveKit could hand it A's calls.
        workers.append(worker_for(kubectl, b, livekit, tmp_path))
        workers.append(worker_for(kubectl, a, livekit, tmp_path))
        worker_b, worker_a = workers
        options = CallOptions(
            url=livekit.url,
            api_key=livekit.api_key,
            api_secret=livekit.api_secret,
            agent_name=name_a,
            greeting_timeout=90.0,
        )

        async def calls() -> list[Any]:
            return list(
                await asyncio.gather(*(SimulatedCall(options, i).run([]) for i in range(CALLS)))
            )

        results = asyncio.run(calls())
        assert all(r.error is None and r.greeting for r in results), [r.to_json() for r in results]
        rooms = [r.room for r in results]

        def records(worker: AgentWorker) -> list[Obj]:
            return call_records(worker.log.read_text().splitlines())

        served = wait_for(
            "A's worker logged every call",
            lambda: (got := {c["room"]: c for c in records(worker_a)}).keys() >= set(rooms) and got,
            60,
        )
        assert all(served[room]["namespace"] == a for room in rooms)
        time.sleep(1)
        assert not {c["room"] for c in records(worker_b)} & set(rooms)
    finally:
        for w in workers:
            w.stop()
        kubectl("delete", "namespace", b, "--wait=false", check=False)
