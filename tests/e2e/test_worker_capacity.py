"""A worker's capacity with real calls (issue 20): a worker near its pod's memory limit takes no
new call until its memory frees, and ``spec.scaling.executor: thread`` serves calls as threads
of the worker's one process.

The memory test confines the worker in a memory cgroup of its own, as kubelet confines a pod
(kubevox_devenv/cgroup.py): it needs root and cgroup v1's memory controller, as the node does.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from kubevox_api import KnowledgeBase
from kubevox_devenv.cgroup import PodCgroup, why_not
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.worker import AgentWorker
from livekit import api

from agent_runtime.caller import SimulatedCall
from agent_runtime.caller.audio import synthesize
from agent_runtime.load import MEMORY_FULL
from tests.support.servers.openai_server import OpenAIServer
from tests.support.voice import AVAILABLE, UNAVAILABLE, call_options, stand_in_worker
from tests.support.waits import until

pytestmark = [pytest.mark.e2e, pytest.mark.voice]

_LOAD = re.compile(r"^kubevox_worker_load\{[^}]*\} ([0-9.e+-]+)$", re.M)


def load(worker: AgentWorker) -> float:
    match = _LOAD.search(worker.metrics())
    assert match, "the worker exports no kubevox_worker_load"
    return float(match.group(1))


async def steady_working_set(group: PodCgroup, within: float = 120) -> float:
    """The working set once the worker's idle job processes have loaded their models."""
    previous = group.working_set_mib()
    async with asyncio.timeout(within):
        while True:
            await asyncio.sleep(3)
            now = group.working_set_mib()
            if abs(now - previous) < 0.01 * previous:
                return now
            previous = now


@pytest.mark.skipif(why_not() is not None, reason=f"a pod's cgroups: {why_not()}")
async def test_a_worker_near_its_memory_limit_takes_no_call_until_memory_frees(
    tmp_path: Path,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
) -> None:
    group = PodCgroup(f"kubevox-e2e-{uuid.uuid4().hex[:8]}")
    try:
        # The worker is born in the pod's cgroup.
        with stand_in_worker(
            tmp_path, clinic_kb, llm_primary, livekit, redis_server, group.launcher(),
            agentName="memory-bound",
        ) as worker:  # fmt: skip
            await _refused_while_memory_is_short(worker, group, livekit)
    finally:
        group.remove()


async def _refused_while_memory_is_short(
    worker: AgentWorker, group: PodCgroup, livekit: LiveKitServer
) -> None:
    options = call_options(livekit, "memory-bound")
    calls: list[SimulatedCall] = []
    try:
        idle = await steady_working_set(group)
        assert load(worker) < 1.0  # the calls' part and the CPU's (weight 0 here) leave room
        # The working set is 93 % of the limit, over MEMORY_FULL: the next call would not fit.
        group.limit_memory(int(idle * 2**20 / 0.93))
        await until("the worker to report itself full", lambda: load(worker) == 1.0, 30)
        # LiveKit offers a call once, to the workers available then: wait until it knows.
        await until("LiveKit told", lambda: UNAVAILABLE in worker.log.read_text(), 30)
        assert MEMORY_FULL < 0.93
        refused = SimulatedCall(replace(options, greeting_timeout=15), 0)
        calls.append(refused)
        assert not (await refused.start()).greeting, "a worker at its memory limit took a call"
        assert worker.active_calls() == 0
        await refused.hang_up()
        # Its dispatch may still wait for a worker: the room goes, as a caller's that hung up.
        async with api.LiveKitAPI(livekit.url, livekit.api_key, livekit.api_secret) as lk:
            await lk.room.delete_room(api.DeleteRoomRequest(room=refused.room_name))

        group.limit_memory(None)  # the memory freed (here: the limit raised)
        await until("the worker to have room again", lambda: load(worker) < 1.0, 30)
        await until("LiveKit told", lambda: AVAILABLE in worker.log.read_text(), 30)
        taken = SimulatedCall(options, 1)
        calls.append(taken)
        assert (await taken.start()).greeting, "the worker with room again took no call"
        await until("the call counted", lambda: worker.active_calls() == 1, 20)
        full_log = worker.log.read_text()
        assert '"memory": 0.9' in full_log, "the worker did not say memory filled it"
    finally:
        for call in calls:
            await call.hang_up()


async def test_calls_as_threads_of_one_process(
    tmp_path: Path,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
) -> None:
    scaling = {"minReplicas": 1, "maxReplicas": 1, "targetCallsPerPod": 2, "maxCallsPerPod": 4}
    with stand_in_worker(
        tmp_path, clinic_kb, llm_primary, livekit, redis_server,
        agentName="threads", scaling={**scaling, "executor": "thread"},
    ) as worker:  # fmt: skip
        await _calls_in_the_workers_process(worker, livekit)


async def _calls_in_the_workers_process(worker: AgentWorker, livekit: LiveKitServer) -> None:
    assert worker.process is not None
    assert worker.process.popen is not None
    parent = psutil.Process(worker.process.popen.pid)
    processes_idle = len(parent.children(recursive=True))
    calls = [SimulatedCall(call_options(livekit, "threads"), i) for i in range(2)]
    try:
        for call in calls:
            assert (await call.start()).greeting, "a call was not answered"
        await until("two calls in the worker", lambda: worker.active_calls() == 2, 20)
        turns = await asyncio.gather(
            *(c.turn(synthesize("When does the pharmacy open on Saturdays?")) for c in calls)
        )
        for turn in turns:
            assert "saturday" in turn.heard.lower(), turn.heard
        # No process was started for the calls: they run in the worker's own.
        assert len(parent.children(recursive=True)) == processes_idle
    finally:
        for call in calls:
            await call.hang_up()
