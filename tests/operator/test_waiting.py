"""Calls waiting for a worker (waiting.py, waiting_poll.py): what LiveKit does with a call that
arrives when no worker of its agent is registered, how the operator finds it and hands it to a
worker that registers later, and the status it writes (the operator process's status and
metrics are in test_waiting_counts.py). Against a real livekit-server and a real LiveKit Agents
worker (tests/operator/sleepy_worker.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubevox_api import VoiceAgent, contract
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.procs import eventually
from kubevox_operator.cache import Cache
from kubevox_operator.egress import parse_cidrs
from kubevox_operator.status import AgentObservation, Problem, agent_status
from kubevox_operator.waiting import (
    GRACE_SECONDS,
    REDISPATCH_SECONDS,
    LiveKitRooms,
    WaitingBook,
    WaitingCall,
    jobless_dispatches,
)
from kubevox_operator.waiting_poll import (
    Polled,
    WaitingPoll,
    calls_in_progress,
    held_dispatches,
    workers_with_room,
)
from livekit import api

from tests.support.kube import Obj
from tests.support.objects import voice_agent

from .livekit_peers import caller, log_has, sleepy_worker

LOOPBACK = parse_cidrs("127.0.0.1/32")  # the local LiveKit: the operator refuses it by default


# --- pure ---------------------------------------------------------------------------------------


def _room(name: str) -> api.Room:
    return api.Room(name=name, sid=f"RM_{name}", num_participants=1)


def _dispatch(id_: str, agent: str) -> api.AgentDispatch:
    return api.AgentDispatch(id=id_, agent_name=agent, metadata="m")


CALLER = api.ParticipantInfo(identity="caller", kind=api.ParticipantInfo.Kind.STANDARD)


def _agent(name: str) -> api.ParticipantInfo:
    return api.ParticipantInfo(
        identity="agent-AJ_1",
        kind=api.ParticipantInfo.Kind.AGENT,
        attributes={"lk.agent.name": name},
    )


def test_a_call_waits_where_a_caller_and_a_dispatch_have_no_agent_of_its_name() -> None:
    rooms = [_room(n) for n in ("a", "b", "left", "other", "wrong")]
    dispatches = {
        "a": [_dispatch("AD_a", "support")],
        "b": [_dispatch("AD_b", "support")],
        "left": [_dispatch("AD_l", "support")],
        "other": [_dispatch("AD_o", "billing")],
        "wrong": [_dispatch("AD_w", "support")],
    }
    people = {
        "a": [CALLER],
        "b": [CALLER, _agent("support")],  # a worker took it
        "left": [_agent("support")],  # the caller hung up
        "other": [CALLER],  # not an agent we look for
        "wrong": [CALLER, _agent("billing")],  # another agent is no answer to this dispatch
    }
    assert jobless_dispatches(rooms, dispatches, people, {"support"}) == [
        WaitingCall("a", "RM_a", "AD_a", "support", "m"),
        WaitingCall("wrong", "RM_wrong", "AD_w", "support", "m"),
    ]


def test_a_call_waits_after_the_grace_period_and_stays_counted_across_a_redispatch() -> None:
    book = WaitingBook()
    call = WaitingCall("a", "RM_a", "AD_1", "support", "")
    assert book.update([call], 0.0) == ([], [])  # may still be on its way to a worker
    assert book.update([call], GRACE_SECONDS) == ([call], [])
    assert book.update([call], REDISPATCH_SECONDS) == ([call], [call])
    # Redispatched: a new dispatch id, young again; the call still waits, is not yet due.
    again = WaitingCall("a", "RM_a", "AD_2", "support", "")
    t = REDISPATCH_SECONDS + 1
    assert book.update([again], t) == ([again], [])
    assert book.update([again], t + REDISPATCH_SECONDS) == ([again], [again])
    assert book.update([], t + REDISPATCH_SECONDS + 1) == ([], [])  # taken, or the caller left
    assert book.first_seen == {}
    assert book.waiting_rooms == set()


def test_a_call_is_handed_again_only_where_a_ready_worker_has_room() -> None:
    label = contract.LABEL_VOICE_AGENT

    def pod(name: str, *, ready: bool = True, calls: str | None = None, **meta: object) -> Obj:
        annotations = {} if calls is None else {contract.ACTIVE_CALLS_ANNOTATION: calls}
        return {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "resourceVersion": "1",
                "labels": {label: "support"},
                "annotations": annotations,
                **meta,
            },
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
        }

    cache = Cache()
    agent = Polled(("ns", "support"), max_calls_per_pod=2)
    cache.put("Pod", pod("full", calls="2"))
    cache.put("Pod", pod("starting", ready=False))
    cache.put("Pod", pod("leaving", calls="0", deletionTimestamp="2026-11-30T00:00:00Z"))
    assert workers_with_room(cache, agent, label) == 0  # the call waits for the new pod
    cache.put("Pod", pod("fresh"))  # ready, has not written its count yet
    cache.put("Pod", pod("one-call", calls="1"))
    assert workers_with_room(cache, agent, label) == 2


def test_a_call_a_worker_holds_is_not_waiting_and_a_terminating_worker_asks_for_no_pod() -> None:
    """What the look reads off the workers' pods, in the same look as LiveKit's rooms: the
    dispatches they hold (a worker that took a call has not joined its room yet) and the calls of
    those not terminating (a draining pod takes no new call)."""

    def pod(calls: str, dispatches: str | None, **meta: object) -> Obj:
        annotations = {contract.ACTIVE_CALLS_ANNOTATION: calls}
        if dispatches is not None:
            annotations[contract.DISPATCHES_ANNOTATION] = dispatches
        return {"metadata": {"annotations": annotations, **meta}}

    pods = [
        pod("2", "AD_1,AD_2"),
        pod("1", "AD_3", deletionTimestamp="2026-11-30T00:00:00Z"),
        pod("0", ""),
        pod("1", None),  # a worker of before the annotation: its count still counts
        {"metadata": {}},  # a pod that has written nothing yet
    ]
    assert held_dispatches(pods) == {"AD_1", "AD_2", "AD_3"}
    assert calls_in_progress(pods) == 3


async def test_the_look_parses_an_agent_once_a_generation_and_spares_a_missing_secret() -> None:
    """Every agent is looked at every second: what does not change is not redone."""
    cache = Cache()
    body = voice_agent("support", "ns")
    body["metadata"].update(uid="u1", generation=1, resourceVersion="1")
    cache.put("VoiceAgent", body)
    asked: list[str] = []

    async def credentials(agent: VoiceAgent, ns: str) -> Problem:
        asked.append(agent.spec.livekit.credentials_secret_ref.name)
        return Problem("SecretMissing", "Secret ns/livekit not found")

    poll = WaitingPoll(cache, credentials, lambda key: None, contract.LABEL_VOICE_AGENT, 1.0)
    await poll.look()
    await poll.look()
    assert asked == ["livekit"]  # read again only after CREDENTIALS_RETRY_SECONDS
    assert poll.counts == {}  # unknown, not 0: nothing was asked of LiveKit
    parsed = poll._parsed[("ns", "support")][1]
    await poll.look()
    assert poll._parsed[("ns", "support")][1] is parsed
    body = voice_agent("support", "ns", agentName="front-desk")
    body["metadata"].update(uid="u1", generation=2, resourceVersion="2")
    cache.put("VoiceAgent", body)
    await poll.look()
    again = poll._parsed[("ns", "support")][1]
    assert again is not None
    assert again.spec.agent_name == "front-desk"


def test_status_says_scaled_to_zero_and_who_waits() -> None:
    def status(replicas: int, ready: int, waiting: int | None) -> Obj:
        deployment = {
            "metadata": {"name": "a", "generation": 1},
            "spec": {"replicas": replicas},
            "status": {
                "observedGeneration": 1,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [
                    {"type": "Available", "status": "True" if ready == replicas else "False"}
                ],
            },
        }
        obs = AgentObservation(
            generation=1,
            previous={},
            agent_name="a",
            config_hash="h",
            deployment=deployment,
            scales_to_zero=True,
            waiting_calls=waiting,
        )
        return agent_status(obs)

    def ready(st: Obj) -> tuple[str, str, str]:
        (c,) = [c for c in st["conditions"] if c["type"] == "Ready"]
        return c["status"], c["reason"], c["message"]

    assert ready(status(0, 0, 0))[:2] == ("True", "ScaledToZero")
    assert status(0, 0, 0)["waitingCalls"] == 0
    assert ready(status(1, 0, 1)) == (
        "True",
        "ScalingFromZero",
        "the first worker is starting (1 call(s) wait)",
    )
    assert ready(status(1, 1, 0))[:2] == ("True", "AgentReady")
    # A scale-up keeps the agent Ready: its ready workers take calls meanwhile.
    assert ready(status(3, 2, 0)) == (
        "True",
        "AgentReady",
        "2 of 3 workers are ready, more are starting",
    )
    assert "waitingCalls" not in status(1, 1, None)


# --- against a real LiveKit server --------------------------------------------------------------


async def test_a_call_before_any_worker_waits_until_handed_to_one_that_registers(
    livekit: LiveKitServer, tmp_path: Path
) -> None:
    agent_name = f"sleepy-{uuid.uuid4().hex[:6]}"
    room = f"call-{uuid.uuid4().hex[:6]}"
    async with (
        caller(livekit, room, agent_name),
        LiveKitRooms(livekit.url, livekit.api_key, livekit.api_secret, LOOPBACK) as lk,
    ):
        book = WaitingBook()
        seen = await eventually(
            "the dispatch", lambda: lk.jobless({agent_name}, book, 0.0), within=30
        )
        assert [c.room for c in seen] == [room]
        waiting, due = book.update(seen, 0.0)
        assert (waiting, due) == ([], [])
        (call,) = await lk.jobless({agent_name}, book, REDISPATCH_SECONDS)
        waiting, due = book.update([call], REDISPATCH_SECONDS)
        assert waiting == due == [call]

        with sleepy_worker(livekit, agent_name, tmp_path / "worker.log") as log:
            await eventually("the worker to register", log_has(log, "registered worker"), 30)
            # LiveKit does not offer the old dispatch to the worker that just registered: the
            # caller would wait for ever.
            await asyncio.sleep(3)
            assert await lk.jobless({agent_name}, book, 10.0) == [call]
            assert "JOB" not in log.read_text()

            await lk.redispatch(call)
            await eventually("the worker to take the call", log_has(log, f"JOB {room}"), 30)
            await eventually("the worker in the room", _none_waiting(lk, agent_name, book), 30)
            assert call.room_sid in book.served  # not listed again while the call lasts


async def test_a_call_every_worker_refused_waits_until_handed_again_to_one_with_room(
    livekit: LiveKitServer, tmp_path: Path
) -> None:
    """The case of an agent with running workers: one is registered but full (its load at the
    threshold, as a worker with maxCallsPerPod calls or a saturated CPU reports). LiveKit drops
    the call there too; once the worker has room, the redispatch reaches it."""
    agent_name = f"busy-{uuid.uuid4().hex[:6]}"
    room = f"call-{uuid.uuid4().hex[:6]}"
    full = tmp_path / "full"
    full.touch()
    with sleepy_worker(livekit, agent_name, tmp_path / "worker.log", full) as log:
        await eventually("the worker to register", log_has(log, "registered worker"), 30)
        async with (
            caller(livekit, room, agent_name),
            LiveKitRooms(livekit.url, livekit.api_key, livekit.api_secret, LOOPBACK) as lk,
        ):
            book = WaitingBook()
            (call,) = await eventually(
                "the dispatch", lambda: lk.jobless({agent_name}, book, 0.0), within=30
            )
            full.unlink()  # the worker has room again, but LiveKit does not offer the call again
            await asyncio.sleep(3)
            assert await lk.jobless({agent_name}, book, 1.0) == [call]
            assert "JOB" not in log.read_text()

            await lk.redispatch(call)
            await eventually("the worker to take the call", log_has(log, f"JOB {room}"), 30)
            await eventually("the worker in the room", _none_waiting(lk, agent_name, book), 30)


def _none_waiting(
    lk: LiveKitRooms, agent_name: str, book: WaitingBook
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await lk.jobless({agent_name}, book, 20.0) == []

    return check
