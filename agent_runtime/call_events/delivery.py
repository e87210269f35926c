"""Getting the outbox's events to every sink, at least once.

Each sink is a consumer group on the outbox stream, with a loop of its own: a sink that is down
holds no other back. A loop takes, in turn, the entries it holds already (its retries), those a
dead consumer held for longer than ``claim_idle_seconds`` (a pod killed mid-delivery), then new
ones; it acknowledges an entry once its sink has it. A failure leaves the entry pending and the
loop backs off, doubling up to ``backoff_max``: a receiver down for ten minutes is tried again
within ``backoff_max`` of its return and gets every event. Nothing is given up before it is
``max_age_seconds`` old in the outbox. An interrupted delivery (cancelled, killed, drained) only
leaves entries pending, for this consumer's next pass or another's claim: repeats are possible,
by the event's id, losses are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from .. import metrics
from .outbox import EVENT_FIELD, PRIVATE_FIELD, Outbox, entry_millis
from .sinks import EventConsumer

log = logging.getLogger("kubevox.call_events")

TIDY_EVERY_SECONDS = 10.0
"""How often delivered entries are trimmed from the outbox."""
BATCH = 100

Entry = tuple[bytes, dict[bytes, bytes] | None]


class Backoff:
    """Exponential, capped, with half of each wait random so that many workers retrying one
    receiver spread out; a wait is never longer than ``cap``."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial = initial
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * 2.0 ** min(self.failures, 60))
        self.failures += 1
        return delay / 2 + random.uniform(0, delay / 2)

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Pass:
    """What one pass over a sink's entries did."""

    seen: int = 0
    delivered: int = 0
    failed: bool = False


class Delivery:
    """Delivers the outbox ``key`` to ``sinks`` (by name) as consumer ``consumer`` (unique per
    worker, e.g. its pod's name). It owns the Redis client and the deliverers it is given."""

    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        sinks: Mapping[str, EventConsumer],
        consumer: str,
        *,
        max_age_seconds: float,
        claim_idle_seconds: float = 30.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        block_ms: int = 1000,
        agent: str = "",
        namespace: str = "",
    ) -> None:
        self.redis = redis
        self.key = key
        self.sinks = dict(sinks)
        self.consumer = consumer
        self.max_age_seconds = max_age_seconds
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.block_ms = block_ms
        self.outbox = Outbox(redis, key)
        self._labels = {name: (agent, namespace, name) for name in self.sinks}
        self._cursors: dict[str, bytes | str] = dict.fromkeys(self.sinks, "0-0")
        for labels in self._labels.values():  # each series from 0, as in metrics.py
            metrics.call_events_delivered.labels(*labels)
            metrics.call_events_failed.labels(*labels)
            metrics.call_events_dropped.labels(*labels)

    async def run(self, stop: asyncio.Event) -> None:
        """Delivers until ``stop`` is set (within ``block_ms`` and the delivery in flight)."""
        log.info(
            "call event delivery started",
            extra={"outbox": self.key, "consumer": self.consumer, "sinks": list(self.sinks)},
        )
        async with asyncio.TaskGroup() as tasks:
            for name, deliverer in self.sinks.items():
                tasks.create_task(self._sink_loop(name, deliverer, stop))
            tasks.create_task(self._tidy_loop(stop))
        log.info("call event delivery stopped", extra={"consumer": self.consumer})

    async def deliver_pending_once(self) -> int:
        """Delivers what is in the outbox now, without waiting or retrying (tests, chat);
        returns how many entries were delivered. A sink that fails keeps its entries."""
        delivered = 0
        for name, deliverer in self.sinks.items():
            await self._ensure_group(name)
            while True:
                done = await self._pass(name, deliverer, block_ms=None)
                delivered += done.delivered
                if done.failed or not done.seen:
                    break
        await self.outbox.trim_delivered()
        return delivered

    async def aclose(self) -> None:
        """Closes the deliverers and the outbox's client."""
        for deliverer in self.sinks.values():
            await deliverer.aclose()
        await self.redis.aclose()

    async def _sink_loop(self, name: str, deliverer: EventConsumer, stop: asyncio.Event) -> None:
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        ready = False
        while not stop.is_set():
            try:
                if not ready:
                    await self._ensure_group(name)
                    ready = True
                done = await self._pass(name, deliverer, block_ms=self.block_ms)
            except (RedisError, OSError) as e:
                # Redis away, or the group gone with it (NOGROUP): made again on the next try.
                ready = False
                wait = backoff.next()
                log.warning(
                    "call event outbox unreachable",
                    extra={"outbox": self.key, "sink": name, "error": repr(e), "retry_in": wait},
                )
                await _sleep(stop, wait)
                continue
            if done.failed:
                await _sleep(stop, backoff.next())
            else:
                backoff.reset()

    async def _ensure_group(self, name: str) -> None:
        try:
            await self.redis.xgroup_create(self.key, name, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def _pass(self, name: str, deliverer: EventConsumer, *, block_ms: int | None) -> Pass:
        # Ours first: the entries that failed are retried before anything newer.
        own = await self.redis.xreadgroup(name, self.consumer, {self.key: "0"}, count=BATCH)
        entries = _entries(own)
        if not entries:
            # A cursor per sink, so a long list of live consumers' entries is walked through
            # rather than its head scanned again each time; it comes back to 0-0 at the end.
            claimed = await self.redis.xautoclaim(
                self.key, name, self.consumer, self.claim_idle_ms, self._cursors[name], BATCH
            )
            self._cursors[name] = claimed[0]
            entries = list(claimed[1])
            for gone in claimed[2] if len(claimed) > 2 else []:
                self._drop(name, gone, "trimmed before it was delivered")
            if entries:
                log.info(
                    "claimed call events from an idle consumer (gone, or backing off)",
                    extra={"outbox": self.key, "sink": name, "count": len(entries)},
                )
        if not entries:
            new = await self.redis.xreadgroup(
                name, self.consumer, {self.key: ">"}, count=BATCH, block=block_ms
            )
            entries = _entries(new)
        return await self._deliver(name, deliverer, entries)

    async def _deliver(self, name: str, deliverer: EventConsumer, entries: list[Entry]) -> Pass:
        done = Pass(seen=len(entries))
        for entry_id, fields in entries:
            event = _event(fields)
            age = time.time() - entry_millis(entry_id) / 1000
            if event is None or age > self.max_age_seconds:
                await self.redis.xack(self.key, name, entry_id)
                if event is not None:
                    why = f"still undelivered after {age:.0f} s"
                else:  # a trimmed entry reads back empty
                    why = "unreadable" if fields else "trimmed before it was delivered"
                self._drop(name, entry_id, why, event)
                continue
            try:
                await deliverer.take(event, _private(fields))
            except Exception as e:  # whatever the sink did: retried (the outbox's errors raise)
                metrics.call_events_failed.labels(*self._labels[name]).inc()
                log.warning(
                    "call event not delivered",
                    extra={**_about(name, entry_id, event), "error": repr(e)},
                )
                done.failed = True
                return done
            await self.redis.xack(self.key, name, entry_id)
            metrics.call_events_delivered.labels(*self._labels[name]).inc()
            done.delivered += 1
            log.debug("call event delivered", extra=_about(name, entry_id, event))
        return done

    def _drop(
        self, name: str, entry_id: bytes, why: str, event: dict[str, Any] | None = None
    ) -> None:
        metrics.call_events_dropped.labels(*self._labels[name]).inc()
        log.error("call event dropped: %s", why, extra=_about(name, entry_id, event))

    async def _tidy_loop(self, stop: asyncio.Event) -> None:
        while not await _sleep(stop, TIDY_EVERY_SECONDS):
            try:
                await self.outbox.trim_delivered()
                await self.outbox.forget_idle_consumers()
            except (RedisError, OSError) as e:  # the sink loops report an unreachable Redis
                log.debug("outbox not tidied", extra={"outbox": self.key, "error": repr(e)})


async def _sleep(stop: asyncio.Event, seconds: float) -> bool:
    """Waits ``seconds`` or until ``stop``; whether stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def _entries(reply: Any) -> list[Entry]:
    """The entries of an XREADGROUP reply on one stream."""
    return list(reply[0][1]) if reply else []


def _json_field(fields: dict[bytes, bytes] | None, name: str) -> dict[str, Any] | None:
    """The JSON object in an entry's field ``name``; None if absent or not one."""
    raw = (fields or {}).get(name.encode())
    try:
        value = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _event(fields: dict[bytes, bytes] | None) -> dict[str, Any] | None:
    event = _json_field(fields, EVENT_FIELD)
    return event if event is not None and "id" in event else None


def _private(fields: dict[bytes, bytes] | None) -> dict[str, Any]:
    return _json_field(fields, PRIVATE_FIELD) or {}


def _about(name: str, entry_id: bytes, event: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "sink": name,
        "entry": entry_id.decode(),
        "event_id": (event or {}).get("id"),
        "event_type": (event or {}).get("type"),
        "subject": (event or {}).get("subject"),
    }
