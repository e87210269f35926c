"""Call events over a real call: a simulated caller talks through a real LiveKit server to a
real `kubevox-agent start` worker whose agent has spec.callEvents; its events reach a real
webhook (HMAC-signed) and a Redis Stream in real Redis, through the outbox (a Redis Stream).

The fault a pod can meet mid-delivery: the webhook is down when the call ends, and the worker
holding the events is killed (SIGKILL: no drain, no goodbye). Nothing is lost: another worker of
the agent (another pod's name) takes the dead one's events over and delivers them once the
receiver is back; the Redis Stream sink was not held back meanwhile. The agent also analyses its
calls (spec.analysis, by a local server speaking OpenAI's protocol): the call's
``call.analyzed`` comes through the same faults, made from the call's transcript, which the
agent does not log and no sink gets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubevox_api import KnowledgeBase
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.worker import AgentWorker, call_records

from agent_runtime.caller import SimulatedCall
from agent_runtime.caller.audio import synthesize
from tests.support.servers.openai_server import OpenAIServer, Reply
from tests.support.voice import call_options, start_worker, write_config
from tests.support.waits import until
from tests.support.webhook import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.voice]

KEY = b"whsec-e2e"
AGENT_NAME = "call-events-e2e"


ANALYSIS = {"summary": "The caller asked about parking.", "structuredData": {"topic": "parking"}}


def spec(receiver: Receiver, stream: str, analyst: OpenAIServer) -> dict[str, Any]:
    return {
        "agentName": AGENT_NAME,
        "analysis": {
            "llm": {"provider": "openai", "model": "analyst", "baseURL": analyst.base_url},
            "summary": {},
            "structuredData": {"fields": [{"name": "topic", "description": "what was asked"}]},
        },
        "callEvents": {
            "outbox": {"redisUrlSecretRef": {"name": "redis", "key": "url"}},
            "sinks": [
                {
                    "name": "crm",
                    "webhook": {
                        "url": receiver.url,
                        "signingSecretRef": {"name": "crm", "key": "hmac"},
                        "timeoutSeconds": 2,
                    },
                },
                {
                    "name": "bus",
                    "redisStream": {
                        "redisUrlSecretRef": {"name": "redis", "key": "url"},
                        "stream": stream,
                    },
                },
            ],
        },
    }


def worker_env(redis: RedisSearchServer, pod: str) -> dict[str, str]:
    """What the operator puts in a worker pod's environment from the Secrets named."""
    return {
        OUTBOX_REDIS_ENV: redis.url,
        sink_secret_env(0): KEY.decode(),
        sink_secret_env(1): redis.url,
        "POD_NAME": pod,  # the consumer's name: one per pod
    }


async def events_on_stream(
    url: str, stream: str, call_id: str, count: int, within: float
) -> list[dict[str, Any]]:
    """The events of call ``call_id`` on a Redis Stream, once there are ``count``."""
    r = aioredis.from_url(url)
    try:
        async with asyncio.timeout(within):
            while True:
                entries = await r.xrange(stream)
                events = [json.loads(fields[b"event"]) for _, fields in entries]
                ours = [e for e in events if e["subject"] == call_id]
                if len(ours) >= count:
                    return ours
                await asyncio.sleep(0.5)
    finally:
        await r.aclose()


def kill(worker: AgentWorker) -> None:
    """SIGKILL to the worker and its job processes, as a node lost or an OOM kill."""
    assert worker.process is not None
    assert worker.process.popen is not None
    os.killpg(worker.process.popen.pid, signal.SIGKILL)
    worker.process.popen.wait(30)


async def test_a_calls_events_survive_a_receiver_down_and_a_worker_killed(
    tmp_path: Path,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
) -> None:
    stream = f"e2e:calls:{uuid.uuid4().hex[:8]}"
    llm = {"provider": "openai", "model": "clinic", "baseURL": llm_primary.base_url}
    async with Receiver(KEY) as crm, OpenAIServer("analyst") as analyst:
        analyst.default = Reply(text=json.dumps(ANALYSIS))
        config = write_config(tmp_path, clinic_kb, llm, **spec(crm, stream, analyst))
        first = start_worker(
            tmp_path, config, livekit, redis_server, **worker_env(redis_server, "pod-a")
        )
        crm.down = True  # the CRM is down for the whole call and after
        try:
            result = await SimulatedCall(call_options(livekit, AGENT_NAME)).run(
                [synthesize("Is there free parking at the clinic?")]
            )
            assert result.error is None, result.error

            def record() -> dict[str, Any] | None:
                lines = first.log.read_text().splitlines()
                return next((r for r in call_records(lines) if r["room"] == result.room), None)

            await until("the call's record", lambda: record() is not None, 60)
            logged = record()
            assert logged is not None
            # The Redis Stream sink is not held back by the webhook being down.
            bus = await events_on_stream(redis_server.url, stream, logged["call_id"], 2, 60)
            assert [e["type"] for e in bus][:2] == [
                "dev.kubevox.call.started",
                "dev.kubevox.call.ended",
            ]
            await until("the webhook refused while down", lambda: crm.unavailable > 0, 60)
        finally:
            kill(first)
        # The CRM comes back; another pod of the agent takes the dead worker's events over.
        crm.down = False
        second = start_worker(
            tmp_path, config, livekit, redis_server, **worker_env(redis_server, "pod-b")
        )
        try:
            await until(
                "the call's events at the webhook",
                lambda: len(crm.of_call(logged["call_id"])) == 3,
                120,
            )
        finally:
            second.stop()
        said = [str(r.body["messages"][1]["content"]) for r in analyst.chat_requests]
    # All three, whatever the order: after a failover the start may come after the end (each
    # event's time says when it happened).
    events = {e["type"]: e for e in crm.of_call(logged["call_id"])}
    started, ended = events["dev.kubevox.call.started"], events["dev.kubevox.call.ended"]
    analyzed = events["dev.kubevox.call.analyzed"]
    assert started["time"] <= ended["time"] <= analyzed["time"]
    assert ended["data"] == logged  # the record the worker logged, as the CRM received it
    assert crm.refused == 0  # every delivery was signed with the agent's key
    bus_ids = {e["id"] for e in await events_on_stream(
        redis_server.url, stream, logged["call_id"], 3, 60)}  # fmt: skip
    assert bus_ids == {started["id"], ended["id"], analyzed["id"]}  # the same events
    # The analysis: from the call's transcript, which neither the record nor a sink carries.
    assert analyzed["id"] == f"{ended['id']}-analyzed"
    assert analyzed["data"]["summary"] == ANALYSIS["summary"]
    assert analyzed["data"]["structured_data"] == {"topic": "parking"}
    assert any("caller:" in s and "parking" in s.lower() for s in said), said
    assert "transcript" not in json.dumps(crm.events)
