"""The wire format of call events: CloudEvents 1.0 in structured JSON mode, and the HMAC
signature a webhook receiver checks.

The event's ``id`` is made once, when the event is, and travels with it through the outbox and
every retry: at-least-once delivery repeats an event, and a receiver drops repeats by id.
"""

from __future__ import annotations

import hashlib
import hmac
import time as _time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TYPE_PREFIX = "dev.kubevox."
"""CloudEvents asks for reverse-DNS types: ``call.ended`` goes on the wire as
``dev.kubevox.call.ended``."""
SIGNATURE_HEADER = "X-Kubevox-Signature"
CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_TOLERANCE_SECONDS = 300.0
"""How old a signature a receiver accepts (a replay window, and room for clock skew)."""


def event_source(namespace: str, agent: str) -> str:
    """The CloudEvents ``source`` of an agent's events: a URI reference naming the VoiceAgent."""
    return f"/namespaces/{namespace}/voiceagents/{agent}"


def cloud_event(
    type_: str,
    source: str,
    subject: str,
    data: Mapping[str, Any],
    *,
    id_: str | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    """A CloudEvent (structured mode) of ``type_`` (e.g. ``call.ended``) about the call
    ``subject``; ``id_`` defaults to a fresh uuid4 hex, ``time`` to now."""
    when = (time or datetime.now(UTC)).astimezone(UTC)
    return {
        "specversion": "1.0",
        "id": id_ or uuid.uuid4().hex,
        "source": source,
        "type": f"{TYPE_PREFIX}{type_}",
        "subject": subject,
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }


def _mac(body: bytes, key: bytes, timestamp: int) -> str:
    return hmac.new(key, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def signature(body: bytes, key: bytes, timestamp: int) -> str:
    """The ``X-Kubevox-Signature`` value: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.
    The time is signed with the body so that an old request cannot be replayed as new."""
    return f"t={timestamp},v1={_mac(body, key, timestamp)}"


def verify(
    header: str,
    body: bytes,
    key: bytes,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` with ``key`` at a time within ``tolerance_seconds`` of
    ``now`` (default: the clock). Any ``v1`` may match (several during a key rotation)."""
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            macs.append(value)
    if timestamp is None or not macs:
        return False
    if abs((_time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = _mac(body, key, timestamp).encode()
    # Each candidate compared in constant time, and all of them: no early exit to time.
    return any([hmac.compare_digest(expected, m.encode()) for m in macs])
