"""A caller who says nothing, through a real LiveKit server and a real `kubevox-agent start`
worker (offline voice stack): asked once, then hung up on; and a dispatch nobody joins does
not hold a call slot."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubevox_api import KnowledgeBase
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.worker import AgentWorker
from livekit import rtc

from agent_runtime.caller import SimulatedCall
from tests.support.servers.openai_server import OpenAIServer
from tests.support.voice import call_options, stand_in_worker
from tests.support.waits import until

pytestmark = [pytest.mark.e2e, pytest.mark.voice]

AGENT = "offline-quiet"
SILENCE = 5  # the schema's floor


@pytest.fixture(scope="module")
def quiet_worker(
    tmp_path_factory: pytest.TempPathFactory,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
) -> Iterator[AgentWorker]:
    with stand_in_worker(
        tmp_path_factory.mktemp("quiet"),
        clinic_kb,
        llm_primary,
        livekit,
        redis_server,
        agentName=AGENT,
        silenceTimeoutSeconds=SILENCE,
    ) as worker:
        yield worker


async def test_a_silent_caller_is_asked_once_then_hung_up(
    quiet_worker: AgentWorker, livekit: LiveKitServer
) -> None:
    call = SimulatedCall(call_options(livekit, AGENT), index=1)
    try:
        result = await call.start()
        assert result.greeting, "no greeting"
        greeted = time.monotonic()
        # The caller says nothing: the agent asks, then (as long again) says goodbye.
        prompt = await call._reply_after(greeted, SILENCE + 20)
        assert prompt is not None, "the agent never asked whether the caller is there"
        asked = await call._heard_text(*prompt)
        await until(
            "the agent to hang up",
            lambda: call.room.connection_state != rtc.ConnectionState.CONN_CONNECTED,
            SILENCE + 40,
        )
        assert "there" in asked.lower()
        assert time.monotonic() - greeted >= 2 * SILENCE
    finally:
        await call.hang_up()
    await until("the call to end on the worker", lambda: quiet_worker.active_calls() == 0, 30)
    log = quiet_worker.log.read_text()
    assert '"outcome": "silence_timeout"' in log


async def test_a_dispatch_nobody_joins_is_released(
    quiet_worker: AgentWorker, livekit: LiveKitServer
) -> None:
    call = SimulatedCall(call_options(livekit, AGENT), index=2)
    await call._dispatch()  # a room and a dispatch, and no caller ever joins
    await until("the worker to take the job", lambda: quiet_worker.active_calls() == 1, 60)
    taken = time.monotonic()
    await until("the job to be released", lambda: quiet_worker.active_calls() == 0, SILENCE + 30)
    assert time.monotonic() - taken < SILENCE + 30
    assert "no caller joined" in quiet_worker.log.read_text()
