"""What the operator says of calls waiting for a worker (waiting.py, waiting_poll.py): the
VoiceAgent's status.waitingCalls, its gauge kubevox_waiting_calls, and kubevox_agent_calls, the
calls the KEDA query scales on, where a call a worker has taken counts once. Against a real
livekit-server and the operator as a process on the real control plane."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from collections.abc import Callable

from kubevox_api import contract
from kubevox_devenv.livekit import LiveKitServer
from livekit import api

from tests.support.kube import Kubectl, wait_for
from tests.support.objects import voice_agent
from tests.support.operator_process import OperatorProcess

from .livekit_peers import caller
from .sip_helpers import cluster_secrets


def count_a_waiting_call(
    kubectl: Kubectl,
    ns: str,
    livekit: LiveKitServer,
    name: str,
    says: Callable[[int], None] = lambda count: None,
    **spec: object,
) -> None:
    """Applies VoiceAgent ``name`` (``spec`` besides the test LiveKit), calls it while no worker of
    it runs and follows its status.waitingCalls: 0, 1 while the caller waits, 0 once it hung up.
    At each count ``says`` checks what else the operator should say then."""
    kubectl.apply(cluster_secrets(ns, livekit, auth=False))
    agent_name = f"{name}-{uuid.uuid4().hex[:6]}"
    livekit_ref = {"url": livekit.url, "credentialsSecretRef": {"name": "livekit"}}
    kubectl.apply(voice_agent(name, ns, agentName=agent_name, livekit=livekit_ref, **spec))

    def waiting() -> int | None:
        va = kubectl.get("voiceagent", name, ns) or {}
        count: int | None = (va.get("status") or {}).get("waitingCalls")
        return count

    wait_for("waitingCalls 0", lambda: waiting() == 0)
    says(0)

    async def call() -> None:
        async with caller(livekit, f"{name}-{uuid.uuid4().hex[:6]}", agent_name):
            await asyncio.to_thread(wait_for, "waitingCalls 1", lambda: waiting() == 1)
            says(1)

    asyncio.run(call())
    wait_for("the caller gone from the count", lambda: waiting() == 0)
    says(0)


def test_the_operator_counts_a_waiting_caller_in_status_and_metric(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    ns = namespace
    labels = f'{{agent="cold",agent_namespace="{ns}"}}'

    def scraped() -> str:
        url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body: bytes = resp.read()
            return body.decode()

    def says(count: int) -> None:
        """The metric agrees with status.waitingCalls, and the calls KEDA scales on count the
        waiting caller (no worker has any call); Ready tells of the call that waits."""
        assert f"kubevox_waiting_calls{labels} {count}.0" in scraped()
        assert f"kubevox_agent_calls{labels} {count}.0" in scraped()
        if count == 1:
            va = kubectl.get("voiceagent", "cold", ns)
            assert va
            (ready,) = [c for c in va["status"]["conditions"] if c["type"] == "Ready"]
            # No KEDA here: the Deployment keeps its default single replica, which never starts
            # (no node), so the status shows the start from zero with the waiting call.
            assert (ready["reason"], ready["message"]) == (
                "ScalingFromZero",
                "the first worker is starting (1 call(s) wait)",
            )

    scaling = {
        "autoscaler": "keda",
        "minReplicas": 0,
        "maxReplicas": 3,
        "targetCallsPerPod": 1,
        "maxCallsPerPod": 2,
    }
    count_a_waiting_call(kubectl, ns, livekit, "cold", says, scaling=scaling)


def test_the_operator_counts_a_waiting_caller_of_an_agent_that_keeps_its_workers(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    """minReplicas 1, the default autoscaler: its workers can all be full or refusing too, and a
    call they refused waits just the same (here no worker ever starts: no node)."""
    count_a_waiting_call(kubectl, namespace, livekit, "warm")


def test_a_call_a_worker_holds_counts_once(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    """A worker that took a call writes its dispatch on its pod before its agent joins the room:
    from then on the operator counts the call among the worker's calls and no longer as waiting,
    in one look, so the calls KEDA scales on never count it twice. (No node here: the worker is a
    pod object carrying what a worker writes.)"""
    ns = namespace
    labels = f'{{agent="held",agent_namespace="{ns}"}}'

    def scraped(metric: str) -> str | None:
        url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(metric + labels):
                    return line.rsplit(" ", 1)[1]
        return None

    def waiting() -> int | None:
        va = kubectl.get("voiceagent", "held", ns) or {}
        count: int | None = (va.get("status") or {}).get("waitingCalls")
        return count

    kubectl.apply(cluster_secrets(ns, livekit, auth=False))
    agent_name = f"held-{uuid.uuid4().hex[:6]}"
    livekit_ref = {"url": livekit.url, "credentialsSecretRef": {"name": "livekit"}}
    kubectl.apply(voice_agent("held", ns, agentName=agent_name, livekit=livekit_ref))
    room = f"held-{uuid.uuid4().hex[:6]}"

    async def call() -> None:
        async with caller(livekit, room, agent_name):
            await asyncio.to_thread(wait_for, "waitingCalls 1", lambda: waiting() == 1)
            assert scraped("kubevox_agent_calls") == "1.0"
            lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
            try:
                (dispatch,) = await lk.agent_dispatch.list_dispatch(room)
            finally:
                await lk.aclose()
            worker = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "held-worker",
                    "namespace": ns,
                    "labels": {
                        contract.LABEL_MANAGED_BY: contract.MANAGED_BY,
                        contract.LABEL_VOICE_AGENT: "held",
                    },
                    "annotations": {
                        contract.ACTIVE_CALLS_ANNOTATION: "1",
                        contract.DISPATCHES_ANNOTATION: dispatch.id,
                    },
                },
                "spec": {"containers": [{"name": "agent", "image": "registry.test/agent:1"}]},
            }
            kubectl.apply(worker)
            await asyncio.to_thread(wait_for, "waitingCalls 0", lambda: waiting() == 0)
            assert scraped("kubevox_waiting_calls") == "0.0"
            assert scraped("kubevox_agent_calls") == "1.0"

    asyncio.run(call())
