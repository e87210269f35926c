"""A canary rollout through the VoiceAgent reconciler against the in-memory API (fake_api.py):
which objects each pass applies and removes, the split both pools read, the status and the
Events. The state machine's every path is in test_rollout.py; the real thing is proven on the
node (tests/system/test_canary.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubevox_api import contract

from tests.support.objects import secrets, voice_agent

from .fake_api import Harness, Obj, harness

NS = "team"
KEY = ("VoiceAgent", NS, "va")
CANARY = {
    "strategy": "Canary",
    "canary": {"steps": [{"weight": 20, "pauseSeconds": 60}, {"weight": 50}]},
}


async def canary_agent(settle: float, clock: Callable[[], datetime] | None = None) -> Harness:
    """An agent with a canary strategy, reconciled once: its first configuration serves."""
    h = harness()
    h.agents.rollouts.settle_seconds = settle
    if clock is not None:
        h.agents.rollouts.clock = clock
    for s in secrets(NS):
        h.api.seed(s)
    h.api.seed(voice_agent("va", NS, rollout=CANARY))
    h.watch("VoiceAgent", NS, "va")
    await h.agents.reconcile(KEY)
    return h


def ready(h: Harness, name: str, replicas: int) -> None:
    """The Deployment's pods all run and are available (kube-controller-manager's part)."""
    dep = h.api.objects[("Deployment", NS, name)]
    dep["spec"]["replicas"] = replicas
    dep["status"] = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    h.watch("Deployment", NS, name)


def edit(h: Harness, **spec: Any) -> None:
    agent = h.api.objects[("VoiceAgent", NS, "va")]
    agent["spec"].update(spec)
    agent["metadata"]["generation"] = agent["metadata"].get("generation", 1) + 1
    h.watch("VoiceAgent", NS, "va")


def split(h: Harness) -> dict[str, Any]:
    cm = h.api.live("ConfigMap", NS, "va-rollout")
    assert cm is not None
    return dict(json.loads(cm["data"][contract.ROLLOUT_FILE]))


def template_hash(dep: Obj | None) -> str:
    assert dep is not None
    return str(dep["spec"]["template"]["metadata"]["annotations"][contract.CONFIG_HASH_ANNOTATION])


def rollout(h: Harness) -> Obj:
    live = h.api.live("VoiceAgent", NS, "va")
    assert live is not None
    return dict(live["status"]["rollout"])


async def test_a_change_runs_first_in_a_canary_pool_while_the_stable_pool_keeps_its_own() -> None:
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    h = await canary_agent(settle=20.0, clock=lambda: now)
    stable = h.api.live("Deployment", NS, "va")
    old = template_hash(stable)
    assert rollout(h)["phase"] == "Promoted"
    assert rollout(h)["stableHash"] == old
    assert split(h) == {"canaryHash": old, "canaryWeight": 0, "stableYield": 0}
    assert stable is not None
    volumes = {v["name"]: v for v in stable["spec"]["template"]["spec"]["volumes"]}
    assert volumes["rollout"]["configMap"] == {"name": "va-rollout", "optional": True}
    ready(h, "va", 4)

    edit(h, instructions="You are a terse clinic assistant.")
    await h.agents.reconcile(KEY)
    new = h.api.live("VoiceAgent", NS, "va")["status"]["configHash"]  # type: ignore[index]
    assert new != old
    # The stable pool is left alone: same template, same configuration file.
    assert template_hash(h.api.live("Deployment", NS, "va")) == old
    assert "terse" not in h.api.live("ConfigMap", NS, "va-config")["data"]["agent.json"]  # type: ignore[index]
    canary = h.api.live("Deployment", NS, "va-canary")
    assert canary is not None
    assert template_hash(canary) == new
    assert canary["spec"]["replicas"] == 1  # 20 % of 4 pods
    assert canary["spec"]["selector"]["matchLabels"][contract.LABEL_TRACK] == "canary"
    pod = canary["spec"]["template"]["spec"]
    assert {"name": contract.ROLLOUT_TRACK_ENV, "value": "canary"} in pod["containers"][0]["env"]
    config = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config["configMap"]["name"] == "va-canary-config"
    assert "terse" in h.api.live("ConfigMap", NS, "va-canary-config")["data"]["agent.json"]  # type: ignore[index]
    assert split(h) == {"canaryHash": new, "canaryWeight": 20, "stableYield": 0}
    assert rollout(h)["phase"] == "Progressing"
    assert ("Normal", "CanaryStarted") in await h.event_reasons()

    # The canary's pod is up and the settle is over: the stable pool leaves it its share.
    ready(h, "va-canary", 1)
    h.watch("VoiceAgent", NS, "va")
    now += timedelta(seconds=21)
    again, _ = await h.agents.reconcile(KEY)
    assert split(h)["stableYield"] == 20
    assert again is not None
    assert again <= 10


async def test_an_aborted_canary_is_removed_and_the_agent_says_degraded() -> None:
    h = await canary_agent(settle=0.0)
    old = template_hash(h.api.live("Deployment", NS, "va"))
    ready(h, "va", 2)
    edit(h, instructions="You are a careless assistant.")
    await h.agents.reconcile(KEY)
    assert h.api.live("Deployment", NS, "va-canary") is not None
    new = rollout(h)["canaryHash"]
    # The step failed (its tests, here written as the tests' reconcile would): it goes back.
    agent = h.api.objects[("VoiceAgent", NS, "va")]
    agent["status"]["rollout"] |= {"phase": "Aborting", "stableYield": 0, "message": "tests"}
    h.watch("VoiceAgent", NS, "va")
    # A delete the API server refuses (a role without it): said, and the rest goes on.
    h.api.forbid_delete = {"Deployment"}
    await h.agents.reconcile(KEY)
    st = h.api.live("VoiceAgent", NS, "va")["status"]  # type: ignore[index]
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert "Deployment va-canary cannot be deleted" in degraded["message"]
    assert rollout(h)["phase"] == "Aborted"
    h.api.forbid_delete = set()
    h.watch("VoiceAgent", NS, "va")
    await h.agents.reconcile(KEY)
    assert rollout(h)["phase"] == "Aborted"
    assert h.api.live("Deployment", NS, "va-canary") is None
    # Its ConfigMap stays (the operator deletes no ConfigMap), and no delete of one was tried.
    assert h.api.live("ConfigMap", NS, "va-canary-config") is not None
    assert not [w for w in h.api.writes if w[0] == "delete" and w[1] == "ConfigMap"]
    assert template_hash(h.api.live("Deployment", NS, "va")) == old
    assert split(h)["canaryWeight"] == 0
    st = h.api.live("VoiceAgent", NS, "va")["status"]  # type: ignore[index]
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "CanaryAborted")
    assert new in degraded["message"]
    assert old in degraded["message"]


async def test_a_promoted_rollout_names_no_canary_any_more() -> None:
    """The status is a merge patch: the fields a finished rollout no longer has are removed
    (seen on the node: Promoted, still naming its canary and its step)."""
    h = await canary_agent(settle=0.0)
    ready(h, "va", 2)
    edit(h, instructions="You are a terse clinic assistant.")
    await h.agents.reconcile(KEY)
    new = rollout(h)["canaryHash"]
    agent = h.api.objects[("VoiceAgent", NS, "va")]
    agent["status"]["rollout"] |= {
        "phase": "Promoting",
        "stableHash": new,
        "stableYield": 0,
        "analysis": {"calls": 4},
    }
    h.watch("VoiceAgent", NS, "va")
    await h.agents.reconcile(KEY)
    assert rollout(h) == {
        "phase": "Promoted",
        "stableHash": new,
        "canaryWeight": 0,
        "stableYield": 0,
        "transitionTime": rollout(h)["transitionTime"],
    }
    assert h.api.live("Deployment", NS, "va-canary") is None
