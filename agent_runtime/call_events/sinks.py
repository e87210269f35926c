"""Deliverers: how one event reaches one sink. A deliverer only tries once and raises when it
did not deliver; retrying, backing off and giving up are the delivery's (delivery.py).

Kinds are looked up in :data:`DELIVERERS` by the field of ``CallEventSink`` that is set, so a
new kind of sink is a new class and one entry there.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
import redis.asyncio as aioredis
from kubevox_api.voiceagent_events import CallEventSink

from .cloudevents import CONTENT_TYPE, SIGNATURE_HEADER, signature
from .outbox import EVENT_FIELD, connect, encode_event

log = logging.getLogger("kubevox.call_events")

DEFAULT_GUARD_TTL_SECONDS = 86400


class DeliveryError(Exception):
    """A sink did not take an event (e.g. a webhook's non-2xx answer)."""


class EventConsumer(ABC):
    """Takes each of the outbox's events once (a consumer group of the delivery): a sink's
    deliverer, or a step of kubevox's own (the calls' analysis)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def deliver(self, event: dict[str, Any]) -> None:
        """Delivers ``event`` once, or raises."""

    async def take(self, event: dict[str, Any], private: Mapping[str, Any]) -> None:
        """Takes the outbox entry of ``event``; ``private`` is what the entry carries for
        kubevox's own steps alone (e.g. the transcript to analyse). A sink gets the event
        only."""
        await self.deliver(event)

    # Not abstract: a deliverer without connections has nothing to close.
    async def aclose(self) -> None:  # noqa: B027
        """Releases connections."""


class Deliverer(EventConsumer):
    """Delivers events to one sink of the agent."""

    kind: ClassVar[str]
    """The field of ``CallEventSink`` that holds this kind's settings."""

    @classmethod
    @abstractmethod
    def from_sink(
        cls, sink: CallEventSink, secret: str, *, guard_ttl_seconds: int = DEFAULT_GUARD_TTL_SECONDS
    ) -> Deliverer:
        """The deliverer of ``sink``; ``secret`` is the value of its ``sink_secret_env``."""


class WebhookDeliverer(Deliverer):
    """POSTs the CloudEvent (structured mode), signed: 2xx delivers it; anything else, a
    redirect included (a signed body is not sent where the agent did not say), raises."""

    kind = "webhook"

    def __init__(self, name: str, url: str, key: bytes, *, timeout_seconds: float = 10.0) -> None:
        super().__init__(name)
        self.url = url
        self._key = key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_sink(
        cls, sink: CallEventSink, secret: str, *, guard_ttl_seconds: int = DEFAULT_GUARD_TTL_SECONDS
    ) -> WebhookDeliverer:
        spec = sink.webhook
        assert spec is not None
        # The key's exact bytes: a receiver keys its HMAC with the same Secret value.
        return cls(sink.name, spec.url, secret.encode(), timeout_seconds=spec.timeout_seconds)

    async def deliver(self, event: dict[str, Any]) -> None:
        if self._session is None:  # made here: a session needs the running loop
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = encode_event(event)
        headers = {
            "Content-Type": CONTENT_TYPE,
            SIGNATURE_HEADER: signature(body, self._key, int(time.time())),
        }
        async with self._session.post(
            self.url, data=body, headers=headers, allow_redirects=False
        ) as resp:
            if not 200 <= resp.status < 300:
                raise DeliveryError(f"{self.url} answered {resp.status}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# Adds the entry unless this event was added before: the guard key and the entry go in
# together (a script is atomic), so a retry after a lost answer adds no second entry, and a
# guard is never left without its entry.
_XADD_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', ARGV[4], ARGV[1])
end
return false
"""


class RedisStreamDeliverer(Deliverer):
    """Adds the CloudEvent to a stream (field ``event``), at most once per event id while the
    guard key ``kubevox:delivered:{<stream>}:<id>`` lives (``guard_ttl_seconds``: as long as the
    outbox retries an event). The braces make it a hash tag: in a Redis Cluster the guard and
    the stream share a slot, as the script needs."""

    kind = "redis_stream"

    def __init__(
        self,
        name: str,
        redis: aioredis.Redis,
        stream: str,
        *,
        max_length: int = 100000,
        guard_ttl_seconds: int = DEFAULT_GUARD_TTL_SECONDS,
    ) -> None:
        super().__init__(name)
        self.redis = redis
        self.stream = stream
        self._max_length = max_length
        self._guard_ttl = guard_ttl_seconds

    @classmethod
    def from_sink(
        cls, sink: CallEventSink, secret: str, *, guard_ttl_seconds: int = DEFAULT_GUARD_TTL_SECONDS
    ) -> RedisStreamDeliverer:
        spec = sink.redis_stream
        assert spec is not None
        return cls(
            sink.name,
            connect(secret.strip()),
            spec.stream,
            max_length=spec.max_length,
            guard_ttl_seconds=guard_ttl_seconds,
        )

    def guard_key(self, event_id: str) -> str:
        return f"kubevox:delivered:{{{self.stream}}}:{event_id}"

    async def deliver(self, event: dict[str, Any]) -> None:
        keys = [self.stream, self.guard_key(str(event["id"]))]
        args: list[bytes | str | int] = [
            encode_event(event),
            self._max_length,
            self._guard_ttl,
            EVENT_FIELD,
        ]
        added = await self.redis.eval(_XADD_ONCE, len(keys), *keys, *args)
        if added is None:
            log.info(
                "call event already in the stream",
                extra={"sink": self.name, "stream": self.stream, "event_id": event["id"]},
            )

    async def aclose(self) -> None:
        await self.redis.aclose()


DELIVERERS: dict[str, type[Deliverer]] = {
    WebhookDeliverer.kind: WebhookDeliverer,
    RedisStreamDeliverer.kind: RedisStreamDeliverer,
}
"""Each kind of sink by the ``CallEventSink`` field that configures it."""


def build_deliverer(
    sink: CallEventSink, secret: str, *, guard_ttl_seconds: int = DEFAULT_GUARD_TTL_SECONDS
) -> Deliverer:
    """The deliverer of ``sink``, of the kind its set field names."""
    for field, kind in DELIVERERS.items():
        if getattr(sink, field) is not None:
            return kind.from_sink(sink, secret, guard_ttl_seconds=guard_ttl_seconds)
    raise ValueError(f"sink {sink.name!r} sets no known kind ({', '.join(DELIVERERS)})")
