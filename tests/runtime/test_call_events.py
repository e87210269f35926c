"""Call events reach every sink at least once (agent_runtime/call_events): against the session's
real Redis and real aiohttp receivers on loopback that check each request's signature, through
a receiver down, a consumer killed mid-delivery and a worker drained; old events are given up,
counted; the signature refuses forgeries and replays."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime import metrics
from agent_runtime.call_events import build_delivery, from_config
from agent_runtime.call_events.cloudevents import (
    CONTENT_TYPE,
    SIGNATURE_HEADER,
    cloud_event,
    event_source,
    signature,
    verify,
)
from agent_runtime.call_events.delivery import Delivery
from agent_runtime.call_events.outbox import Outbox, connect, outbox_key
from agent_runtime.call_events.sinks import Deliverer, RedisStreamDeliverer, WebhookDeliverer

from ..knowledge.helpers import CuttableProxy
from ..support.runtime import make_config

pytestmark = pytest.mark.redis

NS = "clinic"
KEY = b"hmac-key-of-the-receiver"
SECRET = {"name": "call-events", "key": "secret"}


class Receiver:
    """A webhook on loopback: checks the signature and content type of every request, answers
    ``status``, and holds requests while ``gate`` is set and not open."""

    def __init__(self) -> None:
        self.status = 200
        self.gate: asyncio.Event | None = None
        self.attempts: list[tuple[float, str, int]] = []  # (monotonic time, event id, status)
        self.accepted: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.in_flight = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(request.headers.get(SIGNATURE_HEADER, ""), body, KEY):
            self.problems.append(f"bad signature {request.headers.get(SIGNATURE_HEADER)}")
            return web.Response(status=401)
        if request.headers.get("Content-Type") != CONTENT_TYPE:
            self.problems.append(f"content type {request.headers.get('Content-Type')}")
        event = json.loads(body)
        self.in_flight += 1
        if self.gate is not None:
            await self.gate.wait()
        status = self.status
        self.attempts.append((time.monotonic(), event["id"], status))
        if status == 200:
            self.accepted.append(event)
        return web.Response(status=status)

    def ids(self) -> list[str]:
        return [e["id"] for e in self.accepted]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/events", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/events"

    async def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        assert self._runner is not None
        await self._runner.cleanup()


@dataclass
class World:
    url: str
    redis: aioredis.Redis
    receiver: Receiver
    agent: str = field(default_factory=lambda: f"agent-{uuid.uuid4().hex[:10]}")

    @property
    def key(self) -> str:
        return outbox_key(NS, self.agent)

    @property
    def stream(self) -> str:
        return f"test:call-events:{self.agent}"

    async def publish(self, n: int) -> list[str]:
        outbox = Outbox(self.redis, self.key)
        events = [cloud_event("call.ended", "/test", f"call-{i}", {"i": i}) for i in range(n)]
        for event in events:
            await outbox.publish(event)
        return [e["id"] for e in events]

    async def stream_ids(self) -> list[str]:
        return [json.loads(f[b"event"])["id"] for _, f in await self.redis.xrange(self.stream)]

    def delivery(
        self, consumer: str, *, redis_sink: bool = True, outbox_url: str = "", **options: Any
    ) -> Delivery:
        sinks: dict[str, Deliverer] = {"hook": WebhookDeliverer("hook", self.receiver.url, KEY)}
        if redis_sink:
            sinks["stream"] = RedisStreamDeliverer("stream", connect(self.url), self.stream)
        settings: dict[str, Any] = {
            "max_age_seconds": 60.0,
            "backoff_initial": 0.02,
            "backoff_max": 0.3,
            "block_ms": 100,
            "agent": self.agent,
            "namespace": NS,
            **options,
        }
        return Delivery(connect(outbox_url or self.url), self.key, sinks, consumer, **settings)

    def count(self, name: str, sink: str = "hook") -> float:
        labels = {"agent": self.agent, "namespace": NS, "sink": sink}
        return metrics.scrape_registry().get_sample_value(name, labels) or 0.0

    async def pending(self, sink: str = "hook") -> int:
        return int((await self.redis.xpending(self.key, sink))["pending"])


@pytest.fixture
async def world(redis_server: RedisSearchServer) -> AsyncIterator[World]:
    receiver = Receiver()
    await receiver.start()
    w = World(redis_server.url, connect(redis_server.url), receiver)
    yield w
    await receiver.stop()
    await w.redis.delete(w.key, w.stream)
    await w.redis.aclose()


async def until(what: str, probe: Callable[[], Awaitable[bool] | bool], within: float = 10) -> None:
    """Polls ``probe`` until it is true; fails naming ``what`` after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                result = probe()
                if await result if isinstance(result, Awaitable) else result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@contextlib.asynccontextmanager
async def running(delivery: Delivery) -> AsyncIterator[asyncio.Task[None]]:
    """The delivery runs in a task, stopped (by its stop event) and closed at the end."""
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await delivery.aclose()


async def test_an_event_reaches_a_webhook_and_a_redis_stream_once_each(world: World) -> None:
    """The whole path from the agent's config: published to the outbox, delivered to a signed
    webhook and to a Redis Stream, once each; then the outbox holds nothing."""
    sinks = [
        {"name": "hook", "webhook": {"url": world.receiver.url, "signingSecretRef": SECRET}},
        {"name": "stream", "redisStream": {"redisUrlSecretRef": SECRET, "stream": world.stream}},
    ]
    events = {"sinks": sinks, "outbox": {"redisUrlSecretRef": SECRET}}
    config = make_config({"callEvents": events}, name=world.agent, namespace=NS)
    env = {OUTBOX_REDIS_ENV: world.url, sink_secret_env(0): KEY.decode()}
    env[sink_secret_env(1)] = world.url
    publisher, delivery = from_config(config, env), build_delivery(config, env, "pod-a")
    assert publisher is not None
    assert delivery is not None
    async with running(delivery):
        started = await publisher.publish("call.started", "room-1", {"caller": "+15550100"})
        ended = await publisher.publish("call.ended", "room-1", {"outcome": "completed"})
        assert started is not None
        assert ended is not None
        published = [started["id"], ended["id"]]
        await until("the webhook", lambda: len(world.receiver.accepted) == 2)
        await until("the stream", lambda: _has(world.stream_ids(), 2))
        await asyncio.sleep(0.3)  # time for a repeat, if there were one
    await publisher.aclose()
    assert world.receiver.problems == []
    assert world.receiver.ids() == published
    assert await world.stream_ids() == published
    got = world.receiver.accepted[1]
    assert got == ended
    assert got["specversion"] == "1.0"
    assert got["type"] == "dev.kubevox.call.ended"
    assert (
        got["source"]
        == event_source(NS, world.agent)
        == f"/namespaces/{NS}/voiceagents/{world.agent}"
    )
    assert got["subject"] == "room-1"
    assert got["datacontenttype"] == "application/json"
    assert got["time"].endswith("Z")
    assert got["data"] == {"outcome": "completed"}
    assert world.count(metrics.CALL_EVENTS_DELIVERED) == 2
    assert world.count(metrics.CALL_EVENTS_DELIVERED, "stream") == 2
    assert await world.pending() == await world.pending("stream") == 0
    assert await Outbox(world.redis, world.key).trim_delivered() == 2
    assert await world.redis.xlen(world.key) == 0


async def _has(ids: Awaitable[list[str]], n: int) -> bool:
    return len(await ids) >= n


async def test_a_receiver_down_gets_every_event_when_back_and_holds_no_other_sink_back(
    world: World,
) -> None:
    """The webhook answers 503 for a while: the Redis sink gets each event meanwhile; the
    webhook's attempts are counted, and their intervals grow but never past ``backoff_max``.
    That cap is how a receiver down for ten minutes still gets everything: it is tried again
    within ``backoff_max`` of its return, and nothing is given up before ``maxAgeSeconds``."""
    world.receiver.status = 503
    async with running(world.delivery("pod-a", backoff_max=0.3)):
        published = await world.publish(3)
        await until("the Redis sink", lambda: _has(world.stream_ids(), 3))
        assert world.receiver.accepted == []  # the webhook is still down
        await until("the backoff to reach its cap", lambda: len(world.receiver.attempts) >= 10)
        published += await world.publish(2)
        await asyncio.sleep(0.5)
        failed = [t for t, _, status in world.receiver.attempts if status == 503]
        world.receiver.status = 200
        await until("every event at the webhook", lambda: set(world.receiver.ids()) == {*published})
    assert sorted(await world.stream_ids()) == sorted(published)
    assert world.receiver.problems == []
    assert world.count(metrics.CALL_EVENTS_FAILED) >= len(failed) > 10
    times = [t for t, _, _ in world.receiver.attempts[: len(failed) + 1]]
    intervals = [b - a for a, b in itertools.pairwise(times)]
    assert max(intervals) < 0.3 + 0.2  # the cap, and a scheduling margin
    assert max(intervals) > 0.3 / 2  # the waits did grow to it
    assert min(intervals[:2]) < 0.1  # from short ones
    assert world.count(metrics.CALL_EVENTS_DROPPED) == 0


async def test_a_consumer_killed_mid_delivery_leaves_its_events_to_another(world: World) -> None:
    """Consumer A has read the events and is killed (cancelled) while the receiver holds its
    request: nothing is acknowledged. Consumer B claims them after ``claim_idle_seconds``."""
    world.receiver.gate = asyncio.Event()
    published = await world.publish(4)
    a = world.delivery("pod-a", redis_sink=False, claim_idle_seconds=0.5)
    task = asyncio.create_task(a.run(asyncio.Event()))
    await until("A's request in flight", lambda: world.receiver.in_flight == 1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await a.aclose()
    info = await world.redis.xpending(world.key, "hook")
    assert info["pending"] == 4
    assert info["consumers"] == [{"name": b"pod-a", "pending": 4}]
    world.receiver.gate.set()
    world.receiver.gate = None
    async with running(world.delivery("pod-b", redis_sink=False, claim_idle_seconds=0.5)):
        await until("every event at the webhook", lambda: set(world.receiver.ids()) == {*published})
        await until("nothing pending", lambda: _none(world.pending()))
    assert await world.pending() == 0
    assert world.receiver.problems == []


async def test_a_drained_worker_leaves_its_events_to_the_next(world: World) -> None:
    """A worker stops (its drain sets the stop event) while its events are undelivered; a new
    one, another consumer, delivers those and the ones published in between: none lost,
    repeats only of the same ids."""
    world.receiver.status = 503
    published = await world.publish(3)
    async with running(world.delivery("pod-a", redis_sink=False)) as task:
        await until("an attempt", lambda: len(world.receiver.attempts) >= 2)
    assert not task.cancelled()  # it returned of itself, within the wait, once stopped
    assert task.exception() is None
    assert await world.pending() == 3
    published += await world.publish(2)  # while no worker runs
    world.receiver.status = 200
    async with running(world.delivery("pod-b", redis_sink=False, claim_idle_seconds=0.3)):
        await until("every event at the webhook", lambda: set(world.receiver.ids()) == {*published})
        await until("nothing pending", lambda: _none(world.pending()))
    assert sorted(set(world.receiver.ids())) == sorted(published)
    assert world.receiver.problems == []


async def _none(pending: Awaitable[int]) -> bool:
    return await pending == 0


async def test_the_outbox_redis_briefly_away_delays_events_and_loses_none(
    world: World, redis_server: RedisSearchServer
) -> None:
    """The delivery's connection to the outbox is cut (Redis keeps its data): it logs, backs
    off and carries on once Redis is back, with the events written meanwhile."""
    proxy = CuttableProxy(redis_server.port)
    await proxy.start()
    try:
        async with running(world.delivery("pod-a", redis_sink=False, outbox_url=proxy.url)):
            published = await world.publish(2)
            await until("the first events", lambda: len(world.receiver.accepted) == 2)
            await proxy.cut()
            published += await world.publish(3)  # other workers still reach the outbox
            await asyncio.sleep(0.5)
            assert len(world.receiver.accepted) == 2
            await proxy.restore()
            await until("every event", lambda: set(world.receiver.ids()) == {*published})
    finally:
        await proxy.close()


async def test_events_older_than_max_age_are_dropped_not_retried_forever(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook that never answers 2xx: its event is acknowledged, counted and logged once it
    is older than ``max_age_seconds``; no attempt follows. The other sink had it."""
    world.receiver.status = 500
    with caplog.at_level(logging.ERROR, logger="kubevox.call_events"):
        async with running(world.delivery("pod-a", max_age_seconds=0.5, backoff_max=0.1)):
            [event_id] = await world.publish(1)
            await until("the drop", lambda: world.count(metrics.CALL_EVENTS_DROPPED) == 1)
            attempts = len(world.receiver.attempts)
            await asyncio.sleep(0.4)
            assert len(world.receiver.attempts) == attempts  # given up
    assert attempts >= 3
    assert await world.pending() == 0
    assert await world.stream_ids() == [event_id]
    assert world.count(metrics.CALL_EVENTS_DROPPED, "stream") == 0
    dropped = [r for r in caplog.records if r.getMessage().startswith("call event dropped")]
    assert [(getattr(r, "event_id", None), getattr(r, "sink", None)) for r in dropped] == [
        (event_id, "hook")
    ]


def test_the_signature_refuses_a_wrong_key_a_changed_body_and_an_old_time() -> None:
    body = b'{"id":"abc"}'
    now = 1_800_000_000
    header = signature(body, KEY, now)
    assert header.startswith(f"t={now},v1=")
    assert verify(header, body, KEY, 300, now + 10)
    assert not verify(header, body, b"another key", 300, now)
    assert not verify(header, body + b" ", KEY, 300, now)
    assert not verify(header, body, KEY, 300, now + 301)  # a replay
    assert not verify(header, body, KEY, 300, now - 301)  # from the future
    forged_time = header.replace(f"t={now}", f"t={now + 200}")
    assert not verify(forged_time, body, KEY, 300, now + 200)
    assert not verify("v1=" + header.partition("v1=")[2], body, KEY, 300, now)
    assert not verify("", body, KEY, 300, now)
    rotated = f"t={now},v1={'0' * 64},v1={header.partition('v1=')[2]}"
    assert verify(rotated, body, KEY, 300, now)  # the old and the new key during a rotation


async def test_the_publisher_skips_the_types_the_agent_does_not_send(world: World) -> None:
    events = {
        "types": ["call.ended"],
        "sinks": [
            {"name": "hook", "webhook": {"url": world.receiver.url, "signingSecretRef": SECRET}}
        ],
        "outbox": {"redisUrlSecretRef": SECRET},
    }
    config = make_config({"callEvents": events}, name=world.agent, namespace=NS)
    publisher = from_config(config, {OUTBOX_REDIS_ENV: world.url})
    assert publisher is not None
    assert from_config(make_config(name=world.agent), {}) is None  # no callEvents
    assert await publisher.publish("call.started", "room-1", {}) is None
    assert await publisher.publish("call.transferred", "room-1", {"to": "+15550100"}) is None
    assert await world.redis.xlen(world.key) == 0
    ended = await publisher.publish("call.ended", "room-1", {"outcome": "completed"})
    await publisher.aclose()
    [(_, fields)] = await world.redis.xrange(world.key)
    assert json.loads(fields[b"event"]) == ended
