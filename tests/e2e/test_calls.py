"""Real calls: a simulated caller talks through a real LiveKit server to real
`kubevox-agent start` workers running the offline voice stack (whisper, local turn detection,
piper), grounded by a KnowledgeBase ingested into real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubevox_api import AgentRuntimeConfig, KnowledgeBase
from kubevox_api.runtime_config import config_hash
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.worker import AgentWorker, call_records
from livekit import api

from agent_runtime.caller import SimulatedCall
from agent_runtime.caller.audio import synthesize
from tests.support.servers.openai_server import OpenAIServer, Reply
from tests.support.voice import (
    answer_from_context,
    call_options,
    grounded_turn,
    start_worker,
    write_config,
)
from tests.support.waits import until

pytestmark = [pytest.mark.e2e, pytest.mark.voice]

PHARMACY = "When does the pharmacy open on Saturdays?"
PARKING = "Is there free parking at the clinic?"


def _llm(primary: OpenAIServer, fallback: OpenAIServer | None = None) -> dict[str, object]:
    llm: dict[str, object] = {
        "provider": "openai",
        "model": "clinic",
        "baseURL": primary.base_url,
        "timeoutSeconds": 5,
    }
    if fallback is not None:
        llm["fallbacks"] = [
            {
                "provider": "openai",
                "model": "clinic-fallback",
                "baseURL": fallback.base_url,
                "timeoutSeconds": 5,
            }
        ]
    return llm


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def worker(
    workdir: Path,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
    llm_fallback: OpenAIServer,
) -> Iterator[AgentWorker]:
    config = write_config(workdir, clinic_kb, _llm(llm_primary, llm_fallback))
    w = start_worker(workdir, config, livekit, redis_server)
    yield w
    w.stop()


async def test_a_caller_hears_the_grounded_answer(
    worker: AgentWorker, livekit: LiveKitServer, llm_primary: OpenAIServer
) -> None:
    result = await SimulatedCall(call_options(livekit)).run([synthesize(PHARMACY)])
    assert result.error is None
    assert "clinic" in (result.greeting or "").lower()
    turn = result.turns[0]
    assert turn.latency_ms is not None, "no reply"
    heard = turn.heard.lower()
    assert "saturday" in heard
    assert "9" in heard or "nine" in heard
    # The agent heard the question, retrieved from Redis, and gave the model that context.
    asked = [
        r.body
        for r in llm_primary.chat_requests
        if "pharmacy" in str(r.body["messages"][-2:]).lower()
    ]
    assert asked, "the caller's question never reached the language model"
    _, context = grounded_turn(asked[-1])
    assert context, "no knowledge in the caller's message"
    assert "Saturdays at 9 am" in context[0]
    assert all(
        "Saturdays at 9 am" not in str(m["content"])
        for m in asked[-1]["messages"]
        if m["role"] == "system"
    )


async def test_the_call_record_says_who_called_with_which_config_and_what_was_used(
    worker: AgentWorker, livekit: LiveKitServer
) -> None:
    result = await SimulatedCall(call_options(livekit), index=2).run([synthesize(PARKING)])
    assert result.error is None

    def logged() -> list[dict[str, Any]]:
        lines = worker.log.read_text().splitlines()
        return [r for r in call_records(lines) if r["room"] == result.room]

    await until("the call's record in the worker's log", lambda: bool(logged()), 30)
    [record] = logged()
    assert record["caller"] == "web"
    assert record["outcome"] == "caller_hung_up"  # the simulated caller left after its turn
    assert "caller_number" not in record
    rendered = AgentRuntimeConfig.model_validate_json(worker.config.read_text())
    assert record["config_hash"] == config_hash(rendered)  # what the pods and status carry
    assert record["started_at"] < record["ended_at"]
    usage = {u["type"]: u for u in record["usage"]}
    assert usage["stt_usage"]["audio_duration"] > 0  # the caller's question, transcribed
    assert usage["tts_usage"]["characters_count"] > len("Northwind Clinic")  # greeting, answer
    assert usage["llm_usage"]["input_tokens"] > 0
    # The sample scores its callers (spec.sentiment): the question, once the answer was spoken.
    feeling = record["sentiment"]
    assert feeling["turns"], feeling
    mean = sum(feeling["turns"]) / len(feeling["turns"])
    assert feeling["overall"] == pytest.approx(mean, abs=1e-4), feeling


async def test_fallback_takes_over_then_all_fail_and_the_caller_hears_an_apology(
    worker: AgentWorker,
    livekit: LiveKitServer,
    llm_primary: OpenAIServer,
    llm_fallback: OpenAIServer,
) -> None:
    call = SimulatedCall(call_options(livekit), index=1)
    await call.start()
    try:
        llm_primary.responder = lambda _body: Reply(status=500)
        served_before = len(llm_fallback.chat_requests)
        parking = await call.turn(synthesize(PARKING))
        assert parking.latency_ms is not None
        assert "parking" in parking.heard.lower() or "elm" in parking.heard.lower()
        assert len(llm_fallback.chat_requests) > served_before

        llm_fallback.responder = lambda _body: Reply(status=500)
        failed = await call.turn(synthesize(PHARMACY))
        assert failed.latency_ms is not None, "the call hung instead of apologising"
        assert "sorry" in failed.heard.lower()
    finally:
        llm_primary.responder = answer_from_context
        llm_fallback.responder = answer_from_context
        await call.hang_up()


async def test_capacity_spills_to_a_second_worker_and_drain_spares_live_calls(
    workdir: Path,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
) -> None:
    capacity = 2
    config = write_config(
        workdir,
        clinic_kb,
        _llm(llm_primary),
        agentName="capacity",
        scaling={
            "minReplicas": 1,
            "maxReplicas": 2,
            "targetCallsPerPod": 1,
            "maxCallsPerPod": capacity,
        },
        # The held calls stay silent while the second worker starts (minutes on a busy
        # machine): a silent caller would be hung up on (tests/e2e/test_silence.py).
        silenceTimeoutSeconds=3600,
    )
    options = call_options(livekit, "capacity")
    first = start_worker(workdir, config, livekit, redis_server)
    second: AgentWorker | None = None
    calls = [SimulatedCall(options, i) for i in range(capacity)]
    try:
        await asyncio.gather(*(c.start() for c in calls))
        await until("K calls on the first worker", lambda: first.active_calls() == capacity, 20)

        # In a thread: starting a worker takes minutes on a busy machine, the calls stay live.
        second = await asyncio.to_thread(start_worker, workdir, config, livekit, redis_server)
        overflow = SimulatedCall(options, capacity)
        calls.append(overflow)
        await overflow.start()
        assert overflow.result.greeting, "call K+1 was not answered"
        await until("call K+1 on the second worker", lambda: second.active_calls() == 1, 20)
        assert first.active_calls() == capacity, "the full worker took call K+1"

        # SIGTERM, as on a rollout: live calls go on, new ones go elsewhere.
        first.terminate()
        still_talking = await calls[0].turn(synthesize(PARKING))
        assert still_talking.latency_ms is not None
        assert "parking" in still_talking.heard.lower() or "elm" in still_talking.heard.lower()
        after_drain = SimulatedCall(options, capacity + 1)
        calls.append(after_drain)
        await after_drain.start()
        await until("the new call on the second worker", lambda: second.active_calls() == 2, 20)
        assert first.active_calls() == capacity

        for call in calls[:capacity]:
            await call.hang_up()
        assert await asyncio.to_thread(first.wait, 120) == 0, "a drained worker must exit 0"
    finally:
        for call in calls:
            await call.hang_up()
        first.stop()
        if second is not None:
            second.stop()


async def test_a_second_dispatch_of_a_call_leaves_it_to_the_worker_that_joined_first(
    worker: AgentWorker, livekit: LiveKitServer
) -> None:
    """The operator's redispatch, or a second dispatch of the agent, can bring a second job of
    the same agent into a call: the later one leaves at once, the caller hears one agent."""
    call = SimulatedCall(call_options(livekit))
    try:
        assert (await call.start()).greeting, "the call was not answered"
        await until("the call counted", lambda: worker.active_calls() == 1, 20)
        async with api.LiveKitAPI(livekit.url, livekit.api_key, livekit.api_secret) as lk:

            async def agents() -> list[str]:
                listed = await lk.room.list_participants(
                    api.ListParticipantsRequest(room=call.room_name)
                )
                kind = api.ParticipantInfo.Kind.AGENT
                return [p.identity for p in listed.participants if p.kind == kind]

            (first,) = await agents()
            again = api.CreateAgentDispatchRequest(
                agent_name=call.options.agent_name, room=call.room_name
            )
            await lk.agent_dispatch.create_dispatch(again)
            await until(
                "the second job to leave",
                lambda: "another worker serves this call" in worker.log.read_text(),
                60,
            )
            # It has decided to leave; its disconnection reaches LiveKit a moment later.
            async with asyncio.timeout(10):
                while (left := await agents()) != [first]:
                    assert first in left, f"the first worker left the call: {left}"
                    await asyncio.sleep(0.2)
        await until("one call again", lambda: worker.active_calls() == 1, 20)
        reply = await call.turn(synthesize(PARKING))
        assert "parking" in reply.heard.lower() or "elm" in reply.heard.lower(), reply.heard
    finally:
        await call.hang_up()


def test_a_stopped_worker_leaves_no_file_behind(
    tmp_path: Path,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
) -> None:
    """Its config copy and its job processes' metrics files live in one directory of its own,
    removed when it leaves (its exit skips the interpreter's clean-up: see start.py)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    config = write_config(tmp_path, clinic_kb, _llm(llm_primary))
    worker = start_worker(tmp_path, config, livekit, redis_server, TMPDIR=str(tmp))
    try:
        [own] = tmp.glob("kubevox-worker-*")
        assert (own / config.name).read_text() == config.read_text()
        assert (own / "metrics").is_dir()
    finally:
        worker.stop()
    assert list(tmp.glob("kubevox-*")) == []
