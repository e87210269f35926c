"""Everything kubevox holds about one call, or about one phone number's calls, erased on request:
the calls' recordings (``spec.recording``) and their events, records and transcripts in the
agent's outbox and its Redis Stream sinks (``spec.callEvents``).

A number's calls are found by the HMAC their recordings carry (agent_runtime/recording/storage)
and by the records that carry the number unmasked (``logTranscripts`` without ``redact:
phoneNumbers``); a call of that number that was neither recorded nor logged with its number
cannot be told apart, and has no number to erase. What already left kubevox (a webhook
receiver's copy, the worker's log line) is the receiving system's to erase.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubevox_api import AgentRuntimeConfig
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env

from .call_events import required_env
from .call_events.outbox import EVENT_FIELD, connect, entry_text, next_entry_id, outbox_key
from .recording.storage import RecordingStore, call_of, digits

SCAN_BATCH = 500


@dataclass(frozen=True)
class EventStream:
    """A stream of the agent's events: its outbox, or one of its Redis Stream sinks."""

    name: str
    url: str
    key: str


def event_streams(config: AgentRuntimeConfig, env: Mapping[str, str]) -> list[EventStream]:
    events = config.spec.call_events
    if events is None:
        return []

    def url(var: str, what: str) -> str:
        return required_env(env, var, what).strip()

    out = [
        EventStream(
            "outbox",
            url(OUTBOX_REDIS_ENV, "the outbox's Redis URL"),
            outbox_key(config.namespace, config.name),
        )
    ]
    for i, sink in enumerate(events.sinks):
        if sink.redis_stream is not None:
            secret = url(sink_secret_env(i), f"the Redis URL of sink {sink.name!r}")
            out.append(EventStream(sink.name, secret, sink.redis_stream.stream))
    return out


def _event(fields: Mapping[Any, Any]) -> dict[str, Any]:
    raw = fields.get(EVENT_FIELD.encode())
    try:
        event: dict[str, Any] = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return event


def _of_number(event: Mapping[str, Any], number: str) -> bool:
    logged = (event.get("data") or {}).get("caller_number")
    return bool(logged) and digits(str(logged)) == digits(number)


async def _scan(
    stream: EventStream, wanted: Callable[[dict[str, Any]], bool], *, delete: bool
) -> tuple[int, set[str]]:
    """The calls of ``stream``'s ``wanted`` entries, which ``delete`` deletes (how many)."""
    redis = connect(stream.url)
    erased, calls = 0, set()
    try:
        start = "-"
        while batch := await redis.xrange(stream.key, min=start, max="+", count=SCAN_BATCH):
            doomed: list[str] = []
            for entry_id, fields in batch:
                event = _event(fields or {})
                if wanted(event):
                    doomed.append(entry_text(entry_id))
                    calls.add(str(event.get("subject", "")))
            if doomed and delete:
                erased += int(await redis.xdel(stream.key, *doomed))
            start = next_entry_id(batch[-1][0])
    finally:
        await redis.aclose()
    return erased, calls


async def calls_of_number(stream: EventStream, number: str) -> set[str]:
    """The calls whose record in ``stream`` carries ``number``."""
    return (await _scan(stream, lambda e: _of_number(e, number), delete=False))[1]


async def erase_events(stream: EventStream, call_ids: set[str]) -> int:
    """Deletes ``stream``'s entries of the calls ``call_ids``; returns how many."""
    wanted = call_ids - {""}
    return (await _scan(stream, lambda e: str(e.get("subject")) in wanted, delete=True))[0]


@dataclass
class Erasure:
    """What an erasure deleted, for its JSON line (no personal data in it)."""

    calls: set[str] = field(default_factory=set)
    recordings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": sorted(self.calls),
            "recordings": self.recordings,
            "events": self.events,
            "failed": self.failed,
        }


async def erase(
    config: AgentRuntimeConfig,
    env: Mapping[str, str],
    *,
    call_ids: Iterable[str] = (),
    number: str | None = None,
) -> Erasure:
    """Erases the calls ``call_ids``, or every call of ``number`` kubevox can tell, everywhere
    it keeps them for the agent ``config`` describes: first every call is found, then each
    store is cleared of all of them."""
    out = Erasure(calls=set(call_ids))
    recording = config.spec.recording
    store = None
    if recording is not None:
        store = RecordingStore(recording.storage, config.namespace, config.name, env)
    streams = event_streams(config, env)
    if number is not None:
        if store is not None:
            out.calls |= {call_of(name) for name in store.of_caller(number)}
        for stream in streams:
            out.calls |= await calls_of_number(stream, number)
    for stream in streams:
        out.events[stream.name] = await erase_events(stream, out.calls)
    if store is not None:
        names = [n for n in store.recordings_names() if call_of(n) in out.calls]
        out.failed = store.delete(names) if names else []
        out.recordings = [n for n in names if n not in out.failed]
    return out
