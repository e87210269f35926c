"""What an agent tells other systems about its calls (``spec.callEvents``): CloudEvents
delivered at least once to an HTTP endpoint (signed with an HMAC key) or a Redis Stream, through
a durable outbox (a Redis Stream the workers write before a call is over)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field, StringConstraints

from .base import KubeModel, Rule
from .common import SecretKeySelector

CallEventType = Literal["call.started", "call.ended", "call.transferred", "call.analyzed"]
"""``call.started`` (a caller joined and the agent took the call), ``call.ended`` (the call
record: outcome, duration, latencies, usage, and the transcript when the agent logs it),
``call.transferred`` (handed to a human), ``call.analyzed`` (the call's analysis, when the agent
declares ``analysis``)."""
CALL_EVENT_TYPES: tuple[CallEventType, ...] = get_args(CallEventType)

SinkName = Annotated[
    str, StringConstraints(max_length=32, pattern=r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
]


class WebhookSink(KubeModel):
    """An HTTP endpoint that receives each event as a CloudEvent (structured mode, JSON)."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
    """Where each event is POSTed. A 2xx answer delivers it; anything else, or no answer within
    ``timeoutSeconds``, is retried with backoff (up to a minute between tries) until
    ``maxAgeSeconds``."""
    signing_secret_ref: SecretKeySelector
    """The HMAC-SHA256 key: each request carries ``X-Kubevox-Signature: t=<unix time>,
    v1=<hex HMAC of "<t>.<body>">``, for the receiver to check it and refuse replays."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """How long one request may take."""


class RedisStreamSink(KubeModel):
    """A Redis Stream that receives each event as an entry (field ``event``: the CloudEvent)."""

    redis_url_secret_ref: SecretKeySelector
    """The Secret key holding the Redis URL (``redis://`` or ``rediss://``)."""
    stream: Annotated[str, StringConstraints(min_length=1, max_length=256)] = "kubevox:calls"
    """The stream's key."""
    max_length: int = Field(default=100000, ge=100, le=100000000)
    """About how many entries the stream keeps (older ones are trimmed)."""


class CallEventSink(KubeModel):
    """One destination of the agent's call events: a webhook or a Redis Stream."""

    name: SinkName
    """The sink's name, unique in the agent (its delivery is tracked by it)."""
    webhook: WebhookSink | None = None
    """An HTTP endpoint."""
    redis_stream: RedisStreamSink | None = None
    """A Redis Stream."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.webhook) != has(self.redisStream)",
            message="set exactly one of webhook and redisStream",
            check=lambda s: (s.webhook is None) != (s.redis_stream is None),
        ),
    )


class CallEventOutbox(KubeModel):
    """Where events wait until every sink has them: a Redis Stream per agent, written before a
    call is over, so that a worker drained, killed or restarted loses none."""

    redis_url_secret_ref: SecretKeySelector
    """The Secret key holding the Redis URL of the outbox."""
    max_age_seconds: int = Field(default=86400, ge=60, le=604800)
    """How long an event is retried before it is given up (logged, and counted in
    ``kubevox_call_events_dropped_total``)."""


class CallEvents(KubeModel):
    """The agent's call events and where they go."""

    types: list[CallEventType] = Field(
        default_factory=lambda: list(CALL_EVENT_TYPES),
        min_length=1,
        max_length=len(CALL_EVENT_TYPES),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    """The events sent; all by default."""
    sinks: list[CallEventSink] = Field(min_length=1, max_length=8)
    """Where they go; each sink gets every event, at least once (an event's ``id`` is stable:
    a receiver drops the repeats)."""
    outbox: CallEventOutbox
    """The durable outbox."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.sinks.all(s, self.sinks.exists_one(t, t.name == s.name))",
            message="sinks: each name must be unique",
            check=lambda s: len({k.name for k in s.sinks}) == len(s.sinks),
            field_path=".sinks",
        ),
    )


def sink_secret_env(index: int) -> str:
    """The environment variable with the secret of the agent's ``index``-th sink (the webhook's
    HMAC key, or the Redis Stream's URL)."""
    return f"KUBEVOX_CALL_EVENTS_SINK_{index}_SECRET"


OUTBOX_REDIS_ENV = "KUBEVOX_CALL_EVENTS_OUTBOX_REDIS_URL"
"""The environment variable with the outbox's Redis URL."""


def sink_secret_ref(sink: CallEventSink) -> SecretKeySelector:
    """The Secret key a sink needs: the webhook's HMAC key, or the Redis Stream's URL."""
    if sink.webhook is not None:
        return sink.webhook.signing_secret_ref
    assert sink.redis_stream is not None  # the rule: exactly one
    return sink.redis_stream.redis_url_secret_ref


def call_event_secret_refs(events: CallEvents) -> list[SecretKeySelector]:
    """Every Secret key the agent's call events need (the outbox's first)."""
    return [events.outbox.redis_url_secret_ref, *(sink_secret_ref(s) for s in events.sinks)]
