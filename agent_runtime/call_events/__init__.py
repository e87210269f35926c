"""Call events (``spec.callEvents``): CloudEvents about each call, for other systems.

A worker publishes each event to the agent's outbox (a Redis Stream) with
:class:`CallEventPublisher`, and awaits it: once written, the event survives the worker.
:func:`build_delivery` makes the loop that takes the outbox to every sink, at least once each,
from any worker of the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kubevox_api import AgentRuntimeConfig
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env

from ..errors import ConfigError
from .cloudevents import cloud_event, event_source, signature, verify
from .delivery import Delivery
from .outbox import Outbox, connect, outbox_key
from .sinks import DELIVERERS, Deliverer, EventConsumer, build_deliverer

__all__ = [
    "DELIVERERS",
    "CallEventPublisher",
    "Deliverer",
    "Delivery",
    "EventConsumer",
    "Outbox",
    "build_delivery",
    "cloud_event",
    "from_config",
    "outbox_key",
    "signature",
    "verify",
]

log = logging.getLogger("kubevox.call_events")

CLAIM_IDLE_SECONDS = 30.0
"""How long a dead consumer's entries wait before another worker takes them."""


class CallEventPublisher:
    """Writes an agent's call events to its outbox."""

    def __init__(self, outbox: Outbox, source: str, types: Iterable[str]) -> None:
        self.outbox = outbox
        self.source = source
        self.types = frozenset(types)

    async def publish(
        self,
        type_: str,
        call_id: str,
        data: Mapping[str, Any],
        *,
        private: Mapping[str, Any] | None = None,
        id_: str | None = None,
    ) -> dict[str, Any] | None:
        """Writes the event ``type_`` (e.g. ``call.ended``) of call ``call_id`` to the outbox,
        unless the agent does not send that type; returns the event, or None if skipped.
        ``private`` rides along for kubevox's own steps (outbox.PRIVATE_FIELD); ``id_`` makes
        the event's id (default: a new one). Raises if the outbox did not take it."""
        if type_ not in self.types:
            return None
        event = cloud_event(type_, self.source, call_id, data, id_=id_)
        entry = await self.outbox.publish(event, private)
        log.info(
            "call event published",
            extra={
                "event_type": type_,
                "call_id": call_id,
                "event_id": event["id"],
                "entry": entry,
            },
        )
        return event

    async def aclose(self) -> None:
        await self.outbox.redis.aclose()


def required_env(env: Mapping[str, str], name: str, what: str) -> str:
    """``env[name]``, or a ConfigError naming ``what`` and the variable."""
    value = env.get(name)
    if not value:
        raise ConfigError(f"callEvents: {what} is not set (environment variable {name})")
    return value


def from_config(config: AgentRuntimeConfig, env: Mapping[str, str]) -> CallEventPublisher | None:
    """The publisher of the agent ``config`` describes; None when it has no ``callEvents``."""
    events = config.spec.call_events
    if events is None:
        return None
    url = required_env(env, OUTBOX_REDIS_ENV, "the outbox's Redis URL")
    outbox = Outbox(connect(url.strip()), outbox_key(config.namespace, config.name))
    return CallEventPublisher(outbox, event_source(config.namespace, config.name), events.types)


def build_delivery(
    config: AgentRuntimeConfig,
    env: Mapping[str, str],
    consumer: str,
    steps: Iterable[EventConsumer] = (),
) -> Delivery | None:
    """The delivery of the agent's outbox to its sinks, and to kubevox's own ``steps`` (the
    calls' analysis), as consumer ``consumer`` (the pod's name); None when the agent has no
    ``callEvents``."""
    events = config.spec.call_events
    if events is None:
        return None
    max_age = events.outbox.max_age_seconds
    sinks: dict[str, EventConsumer] = {step.name: step for step in steps}
    for i, sink in enumerate(events.sinks):
        secret = required_env(env, sink_secret_env(i), f"the secret of sink {sink.name!r}")
        # A repeat into a Redis sink is refused for as long as the outbox may retry it.
        sinks[sink.name] = build_deliverer(sink, secret, guard_ttl_seconds=max_age)
    # A request still in flight must not look dead: claim after twice the longest timeout.
    timeouts = [s.webhook.timeout_seconds for s in events.sinks if s.webhook is not None]
    url = required_env(env, OUTBOX_REDIS_ENV, "the outbox's Redis URL")
    return Delivery(
        connect(url.strip()),
        outbox_key(config.namespace, config.name),
        sinks,
        consumer,
        max_age_seconds=max_age,
        claim_idle_seconds=max([CLAIM_IDLE_SECONDS, *(2 * t for t in timeouts)]),
        agent=config.name,
        namespace=config.namespace,
    )
