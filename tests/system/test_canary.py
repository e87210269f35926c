"""Canary rollouts on the real node: the offline sample with ``spec.rollout.strategy: Canary``
and its conversation tests, applied with kubectl through the Helm-installed operator.

Calls are real LiveKit dispatches to the agent, each in a new room: a worker of one pool or the
other accepts it (the pools' workers refuse rooms outside their share, and LiveKit offers the
call to another worker) and joins as a participant that names its configuration. A room's share
is a hash of its name, so the test picks rooms of each share and checks where every call went;
what each pool took at each step is printed (docs/testing-agents.md has it). The calls are
placed one at a time: each takes a job process whose replacement loads its models, and the
2-core node also runs both pools and the conversation tests' Job.

1. The bad change (the grounding guard disabled: SmolLM2 then answers what the facts do not
   cover)
   starts at 25 %; its tests fail and the canary is aborted on its own: it never serves a room
   outside the first step's share, then none at all; the agent is Degraded (CanaryAborted), an
   Event says why, and Argo CD's health check shows Degraded.
2. A good change (a new greeting) goes through 25 % and 50 % to 100 %: the stable pool rolls to
   it, and a call in progress on the old configuration is never cut: it still gets its answer
   after the promotion.
3. A change its tests pass but its calls fail (every call apologises) is aborted on the
   canary's own calls in Prometheus (maxApologyRate).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubevox_api import contract, phrases_for
from kubevox_devenv import install as installmod
from kubevox_devenv.fleet import sample_for_this_node
from livekit import api

from agent_runtime.caller import SimulatedCall
from agent_runtime.caller.audio import synthesize
from agent_runtime.traffic_split import room_bucket
from tests.support.lua import health
from tests.support.tools import lua_interpreters

from .conftest import System, await_until, wait_until
from .diagnostics import unanswered
from .helpers import PHARMACY, condition

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "manifests" / "samples" / "tests" / "offline-agent-tests.yaml"
AGENT_HEALTH = REPO / "manifests/argocd/health/kubevox.dev/VoiceAgent/health.lua"
SETTLE = 15.0  # the dev install's rollout.settleSeconds (kubevox_devenv/install.py)
STEPS = [{"weight": 25, "pauseSeconds": 90}, {"weight": 50, "pauseSeconds": 90}]


@pytest.fixture(scope="module")
def canary_namespace(system: System) -> str:
    ns = f"canary-{uuid.uuid4().hex[:6]}"
    installmod.dev_secrets(system.kube, ns, system.keys)
    return ns


ANALYSIS = {"maxErrorRate": 0.5, "maxVoiceToVoiceP95Seconds": 30}


def apply_agent(
    system: System,
    ns: str,
    guard: str,
    greeting: str | None = None,
    analysis: dict[str, Any] | None = None,
) -> None:
    docs = list(yaml.safe_load_all(sample_for_this_node()))
    agent = next(d for d in docs if d["kind"] == contract.VOICE_AGENT_KIND)
    spec = agent["spec"]
    spec["groundingGuard"]["mode"] = guard
    if greeting:
        spec["greeting"] = greeting
    spec["scaling"] |= {"minReplicas": 1, "maxReplicas": 1}
    spec["rollout"] = {
        "strategy": "Canary",
        "canary": {
            "steps": STEPS,
            # Read from the node's Prometheus for the canary alone (a query that failed
            # would hold the step).
            "analysis": analysis or ANALYSIS,
        },
    }
    system.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))


def rollout(system: System, ns: str) -> dict[str, Any]:
    return dict(system.get("voiceagent", "offline", ns).get("status", {}).get("rollout") or {})


def settled_at_weight(st: dict[str, Any], weight: int) -> bool:
    """The rollout holds ``weight`` and every pod has read it (a settle since it was set)."""
    if st.get("phase") != "Progressing" or st.get("stableYield") != weight:
        return False
    since = datetime.fromisoformat(str(st["transitionTime"]).replace("Z", "+00:00"))
    return (datetime.now(UTC) - since).total_seconds() > SETTLE


class Probes:
    """Calls into new rooms, and the configuration that took each: a simulated caller joins
    (so that a call every worker refused is offered again by the operator, as any caller's),
    hears the greeting and hangs up."""

    def __init__(self, system: System, ns: str) -> None:
        self.system, self.ns = system, ns
        self.options = installmod.host_caller(system.kube, system.workdir, ns, "offline")
        self.url = system.livekit_url().replace("ws://", "http://")
        self.keys = system.keys
        self.served: list[tuple[str, str]] = []
        self.overflowed: set[str] = set()
        """Rooms of the canary's share that the stable pool took after they waited."""

    async def one(self, room: str | None = None) -> tuple[str, str]:
        room = room or f"probe-{uuid.uuid4().hex[:10]}"
        call = SimulatedCall(replace(self.options, room=room))
        try:
            if not (await call.start()).greeting:
                why = await asyncio.to_thread(unanswered, self.system, self.ns, room)
                raise AssertionError(f"{why}\nthe rollout: {rollout(self.system, self.ns)}")
            async with api.LiveKitAPI(self.url, *self.keys) as lk:
                digest, overflow = await served_by(lk, room, 30)
        finally:
            await call.hang_up()
        if overflow:
            self.overflowed.add(room)
        self.served.append((room, digest))
        return room, digest

    async def each(self, rooms: list[str]) -> list[tuple[str, str]]:
        """A call into each room, one after the other. Each call takes a worker's job process
        and a new one loads its models in its place: calls placed at once, or in a quick run,
        find every process loading on the 2-core node (a CI run saw one wait past the
        greeting's timeout)."""
        return [await self.one(room) for room in rooms]


def room_in(low: int, high: int) -> str:
    """A new room whose bucket is in ``[low, high)``: its pool is known before the call."""
    while True:
        room = f"probe-{uuid.uuid4().hex[:10]}"
        if low <= room_bucket(room) < high:
            return room


def rooms_across(weight: int) -> list[str]:
    """Two rooms of the canary's share at ``weight`` and two of the stable pool's, in turn."""
    return [room_in(0, weight), room_in(weight, 100), room_in(0, weight), room_in(weight, 100)]


async def served_by(lk: api.LiveKitAPI, room: str, within: float) -> tuple[str, bool]:
    """The configuration of the worker that joined ``room``, and whether it took the call of
    the canary's share after the call waited for the canary (traffic_split.py's overflow)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        people = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        for p in people.participants:
            if contract.CONFIG_HASH_ATTRIBUTE in p.attributes:
                overflow = p.attributes.get(contract.OVERFLOW_ATTRIBUTE) == "true"
                return str(p.attributes[contract.CONFIG_HASH_ATTRIBUTE]), overflow
        await asyncio.sleep(0.5)
    raise AssertionError(f"no worker joined room {room} within {within:.0f} s")


def share(served: list[tuple[str, str]], digest: str) -> str:
    n = sum(1 for _, d in served if d == digest)
    return f"{n}/{len(served)}"


def took(served: list[tuple[str, str]], digest: str, weight: int) -> str:
    """What the canary (configuration ``digest``) took of the rooms of its share at
    ``weight``, and what the stable pool took of the others."""
    ours = [d for r, d in served if room_bucket(r) < weight]
    theirs = [d for r, d in served if room_bucket(r) >= weight]
    canary = sum(d == digest for d in ours)
    stable = sum(d != digest for d in theirs)
    return (
        f"canary {canary}/{len(ours)} of its share's rooms,"
        f" stable pool {stable}/{len(theirs)} of the rest"
    )


def agent_health(obj: dict[str, Any]) -> dict[str, str]:
    interpreters = lua_interpreters()
    assert interpreters, "no Lua interpreter (apt-get install lua5.1): Argo CD's health check"
    return health(interpreters[0], AGENT_HEALTH, obj)


@pytest.mark.timeout(2400)
async def test_a_bad_change_is_aborted_within_its_first_share_and_a_good_one_promoted(
    system: System, canary_namespace: str
) -> None:
    ns = canary_namespace
    apply_agent(system, ns, "auto")
    system.kubectl("apply", "-n", ns, "-f", str(SUITE))

    def stable_ready() -> dict[str, Any] | None:
        agent = system.get("voiceagent", "offline", ns)
        st = agent.get("status") or {}
        ok = condition(agent, "Ready").get("status") == "True"
        return st if ok and (st.get("rollout") or {}).get("phase") == "Promoted" else None

    good = wait_until("the stable pool", stable_ready, 600)["configHash"]
    probes = Probes(system, ns)

    # 1. The bad change: the canary takes 25 % of new rooms until its tests fail.
    apply_agent(system, ns, "disabled")
    during: list[tuple[str, str]] = []
    started = time.monotonic()
    while rollout(system, ns).get("phase") in (None, "Promoted", "Progressing"):
        assert time.monotonic() - started < 900, rollout(system, ns)
        # In turn a room of the first step's share and one beyond it, with a pause.
        during.append(await probes.one(room_in(0, 25) if len(during) % 2 else room_in(25, 100)))
        await asyncio.sleep(5)
    bad = rollout(system, ns)["canaryHash"]
    assert bad != good
    for room, digest in during:
        # Never a room beyond the first step's share.
        assert digest == good or (digest == bad and room_bucket(room) < 25), (room, digest)
    st = wait_until(
        "the canary aborted",
        lambda: r if (r := rollout(system, ns)).get("phase") == "Aborted" else None,
        120,
    )
    assert "conversation tests failed" in st["message"], st
    after = await probes.each(rooms_across(25))
    assert {d for _, d in after} == {good}, after  # new calls: all on the stable pool
    agent = system.get("voiceagent", "offline", ns)
    degraded = condition(agent, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "CanaryAborted"), agent["status"]
    assert agent_health(agent)["status"] == "Degraded"
    events = json.loads(
        system.kubectl(
            "get", "events", "-n", ns, "--field-selector", "reason=CanaryAborted", "-o=json"
        )
    )
    assert any(bad in e["message"] for e in events["items"])
    canary_pool = ("get", "deployment", "-n", ns, "-l", f"{contract.LABEL_TRACK}=canary")
    wait_until(
        "the canary's pool gone",
        lambda: not system.kubectl(*canary_pool, "-o=name"),
        300,
    )
    print(f"\nbad change {bad} at 25 % until aborted: {took(during, bad, 25)}")

    # 2. A good change, with a call in progress on the stable pool all along.
    options = installmod.host_caller(system.kube, system.workdir, ns, "offline")
    rooms = (f"live-{uuid.uuid4().hex[:8]}" for _ in range(1000))
    stable_room = next(r for r in rooms if room_bucket(r) >= 50)  # the stable pool's, always
    live = SimulatedCall(replace(options, room=stable_room))
    assert (await live.start()).greeting, "the live call was not answered"
    apply_agent(system, ns, "auto", greeting="Northwind Clinic, good day. How can I help?")
    measured: list[str] = []
    new = ""
    canary_served = 0
    for step in STEPS:
        weight = int(step["weight"])
        # The live call's audio flows meanwhile: await_until polls in a thread.
        await await_until(
            f"the canary settled at {weight} %",
            lambda w=weight: settled_at_weight(rollout(system, ns), w) or None,
            900,
        )
        before = rollout(system, ns)
        new = before["canaryHash"]
        served = await probes.each(rooms_across(weight))
        after = rollout(system, ns)
        # Every room where its bucket says. The step may end while these calls are placed:
        # then the canary's weight grows first (to ``after``'s), and once the promotion starts
        # the stable pool runs the new configuration too.
        promoting = after.get("phase") != "Progressing"
        for r, digest in served:
            if digest == new and not promoting:
                assert room_bucket(r) < after["canaryWeight"], (r, digest, after)
            elif digest == good:  # the stable pool, which yields the buckets below its yield
                # (unless the call waited for a full canary: then it overflows to the stable)
                waited = r in probes.overflowed
                assert room_bucket(r) >= before["stableYield"] or waited, (r, digest, before)
            else:
                assert digest == new, (r, digest)
        overflowed = sum(1 for r, _ in served if r in probes.overflowed)
        measured.append(f"{weight} %: {took(served, new, weight)} ({overflowed} overflowed)")
        canary_served += sum(1 for _, d in served if d == new and not promoting)
    await await_until(
        "the promotion",
        lambda: r if (r := rollout(system, ns)).get("phase") == "Promoted" else None,
        900,
    )
    assert canary_served, f"the canary served none of its share: {measured}"
    agent = system.get("voiceagent", "offline", ns)
    assert agent["status"]["rollout"]["stableHash"] == new
    assert agent_health(agent)["status"] in ("Healthy", "Progressing")
    after = await probes.each(rooms_across(50))
    assert {d for _, d in after} == {new}, after
    # The call that started on the old configuration was never cut.
    turn = await live.turn(synthesize(PHARMACY))
    assert "saturday" in turn.heard.lower(), "the call in progress got no answer: " + turn.heard
    await live.hang_up()
    print(f"good change {new}: " + "; ".join(measured) + f"; promoted: {share(after, new)} new")

    # 3. A change whose calls go wrong where its tests cannot see it (its greeting is the
    # agent's apology: every call apologises): Prometheus' measurements of its own calls abort
    # it. Its calls are placed in its share (rooms whose bucket is below 25).
    apology = phrases_for("en").apology
    apply_agent(system, ns, "auto", apology, {"minCalls": 2, "maxApologyRate": 0.5})
    await await_until(
        "the third canary at 25 %",
        lambda: settled_at_weight(rollout(system, ns), 25) or None,
        900,
    )
    third = rollout(system, ns)["canaryHash"]
    on_third = 0
    for _ in range(8):  # three on the canary; a call that overflowed to the stable pool is not
        room, digest = await probes.one(room_in(0, 25))
        assert digest == third or room in probes.overflowed, (room, digest)
        on_third += digest == third
        if on_third == 3:
            break
    assert on_third == 3, f"the third canary served {on_third} of its share's calls"

    def aborted() -> dict[str, Any] | None:
        st = rollout(system, ns)
        return st if st.get("phase") in ("Aborting", "Aborted") else None

    st = await await_until("the canary aborted on its calls", aborted, 300)
    assert "apology rate 1 > 0.5" in st["message"], st
    assert st["analysis"]["calls"] >= 2, st
    print(f"apologising change {third}: aborted on its own calls, {st['analysis']}")
    system.kubectl("delete", "namespace", ns, "--wait=false")
