"""Replicas of the operator under kopf peering (peering.py): only the replica kopf lets act
reconciles, resyncs and looks for waiting calls; a paused one, whose cache no longer follows
the cluster, writes nothing, and acts again once the replica that outranked it is gone.
The rule is tested pure, then with two real operator processes on the real control plane."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubevox_operator.cache import Cache
from kubevox_operator.peering import outranking_peers, peering_paths
from kubevox_operator.status import Problem
from kubevox_operator.waiting_poll import WaitingPoll
from prometheus_client import REGISTRY

from tests.support.kube import Kubectl, wait_for
from tests.support.objects import secrets, voice_agent
from tests.support.operator_process import OperatorProcess

from .conftest import REPO, RESYNC_SECONDS

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def _peer(priority: int, seconds_ago: float, lifetime: int = 60) -> dict[str, object]:
    lastseen = NOW - datetime.timedelta(seconds=seconds_ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": lastseen.isoformat()}


def test_a_live_peer_of_higher_or_equal_priority_outranks_this_replica() -> None:
    status = {
        "me": _peer(50, 1),
        "higher": _peer(80, 5),
        "equal": _peer(50, 5),  # kopf pauses both on a tie
        "lower": _peer(10, 5),
        "dead-higher": _peer(90, 61),  # its keep-alive stopped: kopf ignores it
        "garbled": {"priority": "x"},
        "not-a-peer": "text",
    }
    assert outranking_peers(status, "me", 50, NOW) == ["equal", "higher"]
    assert outranking_peers(status, "me", 81, NOW) == []
    assert outranking_peers({}, "me", 1, NOW) == []


def test_a_naive_lastseen_is_utc() -> None:
    naive = (NOW - datetime.timedelta(seconds=5)).replace(tzinfo=None).isoformat()
    status = {"other": {"priority": 9, "lifetime": 60, "lastseen": naive}}
    assert outranking_peers(status, "me", 1, NOW) == ["other"]


def test_the_peering_objects_follow_what_the_operator_watches() -> None:
    assert peering_paths("kubevox", ()) == [("/apis/kopf.dev/v1/clusterkopfpeerings/kubevox", None)]
    assert peering_paths("kubevox", ("a", "team-*")) == [
        ("/apis/kopf.dev/v1/namespaces/a/kopfpeerings/kubevox", None),
        ("/apis/kopf.dev/v1/kopfpeerings?fieldSelector=metadata.name=kubevox", "team-*"),
    ]


async def test_a_paused_replica_neither_looks_for_waiting_calls_nor_reports_any() -> None:
    """The active replica looks and redispatches; the paused one withdraws its gauge, which the
    autoscaler's query would add to the active replica's."""
    acting = True
    looks = 0
    changed: list[tuple[str, str]] = []
    poll = WaitingPoll(
        Cache(), _no_credentials, changed.append, "label", 0.01, acting=lambda: acting
    )

    async def look() -> None:
        nonlocal looks
        looks += 1
        poll._publish({("ns", "support"): 2}, {("ns", "support"): 1})

    poll.look = look  # type: ignore[method-assign]  # LiveKit's side is tested in test_waiting
    task = asyncio.create_task(poll.run())
    try:
        await _until(lambda: looks > 0)
        assert _gauge("ns", "support") == 2
        assert _gauge("ns", "support", "kubevox_agent_calls") == 3
        acting = False
        await _until(lambda: not poll.counts)
        paused_at = looks
        await asyncio.sleep(0.1)  # ten periods
        assert looks == paused_at
        assert _gauge("ns", "support") is None
        assert _gauge("ns", "support", "kubevox_agent_calls") is None
        assert changed[-1] == ("ns", "support")  # its status no longer says it is counted
    finally:
        task.cancel()


async def _no_credentials(agent: object, ns: str) -> Problem:
    return Problem("SecretMissing", "unused")


async def _until(probe: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not probe():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def _gauge(ns: str, name: str, metric: str = "kubevox_waiting_calls") -> float | None:
    return REGISTRY.get_sample_value(metric, {"agent_namespace": ns, "agent": name})


# --- two real replicas ---------------------------------------------------------------------------

PEERING_CRD = REPO / "manifests/base/crds/kopf-peering-namespaced.yaml"


@pytest.fixture
def peering(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """A KopfPeering in the namespace, and the operator's right to it (as the chart grants with
    watchNamespaces). The CRD goes afterwards: other tests check an operator without it."""
    kubectl("apply", "--server-side", "-f", str(PEERING_CRD))
    kubectl("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", "--timeout=30s")
    rbac = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "kubevox-operator-peering", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["kopf.dev"],
                    "resources": ["kopfpeerings"],
                    "verbs": ["get", "list", "watch", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "kubevox-operator-peering", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "kubevox-operator-peering",
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": "kubevox-operator",
                    "namespace": "kubevox-system",
                }
            ],
        },
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "kubevox"}},
    ]
    kubectl.apply([{**o, "metadata": {"namespace": namespace, **o["metadata"]}} for o in rbac])
    try:
        yield "kubevox"
    finally:
        kubectl("delete", "crd", "kopfpeerings.kopf.dev", "--wait=false", check=False)


def reconciles(op: OperatorProcess) -> float:
    url = f"http://127.0.0.1:{op.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('kubevox_operator_reconciles_total{kind="VoiceAgent"')
    )


def logged(op: OperatorProcess, text: str) -> int:
    return sum(1 for r in op.log_records() if text in str(r.get("message")))


def configured_instructions(kubectl: Kubectl, namespace: str) -> str:
    data = json.loads(kubectl("get", "configmap", "desk-config", "-n", namespace, "-o=json"))
    return str(json.loads(data["data"]["agent.json"])["spec"]["instructions"])


@pytest.mark.cluster
def test_only_the_replica_kopf_lets_act_reconciles(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, peering: str, tmp_path: Path
) -> None:
    def replica(priority: int) -> OperatorProcess:
        args = ("--namespace", namespace, "--peering", peering, "--priority", str(priority))
        return OperatorProcess(
            operator.kubeconfig, tmp_path / str(priority), *operator.extra, *args, standalone=False
        )

    (tmp_path / "100").mkdir()
    (tmp_path / "200").mkdir()
    old, new = replica(100), replica(200)
    kubectl.apply(secrets(namespace))
    # The package's operator (standalone, every namespace) stops meanwhile: only the two
    # replicas write here.
    operator.stop()
    old.start()
    try:
        # The first replica acts alone.
        wait_for("the first replica acts", lambda: logged(old, "acting: no replica"), 60)
        kubectl.apply(voice_agent("desk", namespace, instructions="Version one."))
        wait_for("the first replica reconciles", lambda: reconciles(old) > 0, 60)

        # A replica of higher priority starts (an operator rollout's new pod): the first one
        # pauses, and from then on writes nothing, though its resync and its cache go on.
        new.start()
        wait_for("the first replica pauses", lambda: logged(old, "pausing: another replica"), 60)
        paused_at = reconciles(old)
        kubectl.apply(voice_agent("desk", namespace, instructions="Version two."))
        wait_for(
            "the new replica applies version two",
            lambda: configured_instructions(kubectl, namespace) == "Version two.",
            60,
        )
        time.sleep(4 * RESYNC_SECONDS)  # the paused replica's resync would run 4 times here
        assert reconciles(old) == paused_at
        assert configured_instructions(kubectl, namespace) == "Version two."

        # The new replica stops (kopf removes its peering entry): the first one acts again.
        new.stop()
        wait_for("the first replica acts again", lambda: logged(old, "acting: no") == 2, 60)
        kubectl.apply(voice_agent("desk", namespace, instructions="Version three."))
        wait_for(
            "the first replica applies version three",
            lambda: configured_instructions(kubectl, namespace) == "Version three.",
            60,
        )
        assert reconciles(old) > paused_at
    finally:
        new.stop()
        old.stop()
        operator.start()
