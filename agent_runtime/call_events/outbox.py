"""The durable outbox: one Redis Stream per agent that a worker writes each call event to before
the call is over, and that the deliveries read from (one consumer group per sink).

Writing the event is all a call waits for; getting it to the sinks happens apart, retried, so a
slow or absent receiver never holds a call up and a worker drained, killed or restarted loses
nothing. An event is durable once :meth:`Outbox.publish` returns as far as the outbox's Redis
is: its persistence (AOF, replicas) is the operator of that Redis's concern, not ours.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("kubevox.call_events")

OUTBOX_MAX_LENGTH = 1_000_000
"""A backstop, not the outbox's size: entries every sink has are trimmed as they go
(:meth:`Outbox.trim_delivered`), so the stream holds only the backlog. A backlog of a million
events (some 300,000 calls' worth) would have to build up before undelivered ones are lost."""
EVENT_FIELD = "event"
PRIVATE_FIELD = "private"
"""What an entry carries for kubevox's own steps alone, never for a sink: the transcript the
calls' analysis reads when the agent does not send transcripts (``logTranscripts``)."""
IDLE_CONSUMER_SECONDS = 3600.0


def outbox_key(namespace: str, agent: str) -> str:
    """The outbox stream of an agent."""
    return f"kubevox:outbox:{namespace}:{agent}"


def connect(url: str, *, socket_timeout: float = 10.0) -> aioredis.Redis:
    """A pooled client; dead connections (a Redis restart) are replaced on use. The socket
    timeout must exceed a blocking read's wait (the delivery's ``block_ms``)."""
    return aioredis.Redis.from_url(
        url,
        protocol=2,
        decode_responses=False,
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
    )


def encode_event(event: dict[str, Any]) -> bytes:
    """Compact JSON, the same bytes in the outbox, in a Redis sink and in a webhook's body."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def entry_text(value: object) -> str:
    """A stream id or field as text (Redis answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def entry_millis(entry_id: bytes | str) -> int:
    """When an entry was added, in unix milliseconds (the first part of a stream id)."""
    return int(entry_text(entry_id).partition("-")[0])


def next_entry_id(entry_id: object) -> str:
    """The smallest stream id after ``entry_id``."""
    millis, _, seq = entry_text(entry_id).partition("-")
    return f"{millis}-{int(seq or 0) + 1}"


class Outbox:
    """An agent's outbox stream (``key``, see :func:`outbox_key`)."""

    def __init__(
        self, redis: aioredis.Redis, key: str, *, max_length: int = OUTBOX_MAX_LENGTH
    ) -> None:
        self.redis = redis
        self.key = key
        self.max_length = max_length

    async def publish(self, event: dict[str, Any], private: Mapping[str, Any] | None = None) -> str:
        """Adds ``event`` (and ``private``, see PRIVATE_FIELD); returns its entry id. Raises if
        Redis does not take it, so that the caller knows the event is not safe."""
        fields = {EVENT_FIELD: encode_event(event)}
        if private:
            fields[PRIVATE_FIELD] = encode_event(dict(private))
        entry_id = await self.redis.xadd(
            self.key,
            fields,  # type: ignore[arg-type]
            maxlen=self.max_length,
            approximate=True,
        )
        text = entry_text(entry_id)
        log.debug(
            "call event in the outbox",
            extra={"outbox": self.key, "entry": text, "event_id": event.get("id")},
        )
        return text

    async def trim_delivered(self) -> int:
        """Removes the entries every consumer group has acknowledged; returns how many.

        Every group on the stream counts, not only the sinks this worker knows: during a rollout
        that adds a sink, the workers of the old configuration must not trim what the new sink
        has yet to get. A group left behind by a removed sink holds trimming back until the
        MAXLEN backstop; ``XGROUP DESTROY`` frees it.
        """
        groups = await self.redis.xinfo_groups(self.key)
        if not groups:
            return 0
        floor: str | None = None
        for group in groups:
            # The oldest entry the group still needs: its oldest pending one, else the first
            # after the last it was given.
            pending = await self.redis.xpending_range(self.key, group["name"], "-", "+", 1)
            if pending:
                needed = entry_text(pending[0]["message_id"])
            else:
                needed = next_entry_id(group["last-delivered-id"])
            if floor is None or _id_key(needed) < _id_key(floor):
                floor = needed
        assert floor is not None
        # Exact: ``~`` trims whole nodes only (some 100 entries), which a slow stream never fills.
        removed: int = await self.redis.xtrim(self.key, minid=floor, approximate=False)
        return removed

    async def forget_idle_consumers(self, idle_seconds: float = IDLE_CONSUMER_SECONDS) -> int:
        """Removes consumers that hold nothing and did nothing for ``idle_seconds`` (pods gone:
        every pod is a consumer, and groups would keep them all); returns how many. A live one
        removed by mistake is back at its next read."""
        removed = 0
        for group in await self.redis.xinfo_groups(self.key):
            for consumer in await self.redis.xinfo_consumers(self.key, group["name"]):
                if consumer["pending"] == 0 and consumer["idle"] > idle_seconds * 1000:
                    await self.redis.xgroup_delconsumer(self.key, group["name"], consumer["name"])
                    removed += 1
        return removed


def _id_key(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)
