"""The operator's look for calls waiting for a worker, every ``period`` seconds (see waiting.py).

One look per LiveKit server (agents sharing a server share it), for every VoiceAgent: any of
them can run out of workers, scaled to zero or with every worker full or refusing for a moment
(its CPU busy). It reads the agent's worker pods from the cache first (the dispatches they hold,
their calls), then LiveKit; it sets ``kubevox_waiting_calls`` and ``kubevox_agent_calls`` (the
workers' calls plus the waiting ones: one look counts a call once), queues the agents whose
count changed (their status shows it) and redispatches calls that have waited
REDISPATCH_SECONDS while a ready worker with room for a call exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kubevox_api import VoiceAgent, contract
from pydantic import ValidationError

from .cache import Cache
from .egress import Network
from .metrics import AGENT_CALLS, WAITING_CALLS
from .status import Problem
from .waiting import LiveKitRooms, WaitingBook, WaitingError

log = logging.getLogger("kubevox.waiting")

Obj = dict[str, Any]
AgentKey = tuple[str, str]  # namespace, name
Credentials = tuple[str, str, str]  # url, API key, API secret

CREDENTIALS_RETRY_SECONDS = 10.0
"""An agent whose LiveKit credentials could not be read is looked at again after this long."""


@dataclass(frozen=True)
class Polled:
    """A VoiceAgent the look counts waiting calls for."""

    key: AgentKey
    max_calls_per_pod: int


def _is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _calls(pod: Obj) -> int:
    """What the worker last wrote in its active-calls annotation (0 before it first did)."""
    annotations = pod["metadata"].get("annotations") or {}
    try:
        return int(annotations.get(contract.ACTIVE_CALLS_ANNOTATION, 0))
    except ValueError:
        return 0


def held_dispatches(pods: Iterable[Obj]) -> set[str]:
    """The dispatches the workers hold (their dispatches annotation), terminating ones included:
    a call a worker has taken is not waiting, even before its agent joins the room."""
    held: set[str] = set()
    for pod in pods:
        annotations = pod["metadata"].get("annotations") or {}
        held.update(d for d in annotations.get(contract.DISPATCHES_ANNOTATION, "").split(",") if d)
    return held


def calls_in_progress(pods: Iterable[Obj]) -> int:
    """Calls on the workers that are not terminating: a terminating worker drains its calls and
    takes no new one, so its calls ask for no pod (as the HPA's Pods metric skips it)."""
    return sum(_calls(p) for p in pods if not p["metadata"].get("deletionTimestamp"))


def workers_with_room(cache: Cache, agent: Polled, label: str) -> int:
    """Ready, not terminating worker pods below maxCallsPerPod: where a redispatched call can go.
    With none, handing the call to LiveKit again only has it refused again."""
    ns, name = agent.key
    return sum(
        1
        for p in cache.with_label("Pod", ns, label, name)
        if not p["metadata"].get("deletionTimestamp")
        and _is_ready(p)
        and _calls(p) < agent.max_calls_per_pod
    )


class WaitingPoll:
    def __init__(
        self,
        cache: Cache,
        credentials: Callable[[VoiceAgent, str], Awaitable[Credentials | Problem]],
        changed: Callable[[AgentKey], None],
        pod_label: str,
        period: float,
        allowed: Sequence[Network] = (),
        acting: Callable[[], bool] = lambda: True,
    ) -> None:
        self._cache = cache
        self._credentials = credentials
        self._changed = changed
        self._pod_label = pod_label
        self.period = period
        self._allowed = allowed
        """The operator's allow list for LiveKit addresses (egress.py), as for SIP."""
        self._acting = acting
        """False while kopf peering pauses this replica (peering.py): the active one looks."""
        self.counts: dict[AgentKey, int] = {}
        """Waiting calls per polled agent (absent: not polled)."""
        self._books: dict[Credentials, WaitingBook] = {}
        self._failing: set[str] = set()  # LiveKit URLs whose last look failed (logged once)
        self._parsed: dict[AgentKey, tuple[tuple[Any, Any], VoiceAgent | None]] = {}
        self._no_credentials: dict[AgentKey, float] = {}  # agent -> when to try again

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            if not self._acting():
                # The active replica looks: two redispatching one call could have it taken
                # twice, and the autoscaler's query adds up every replica's gauge.
                if self.counts:
                    self._publish({}, {})
                continue
            try:
                await self.look()
            except Exception:  # a bug here must not end the loop, nor the operator
                log.exception("looking for waiting calls failed")

    def _parse(self, body: Obj) -> VoiceAgent | None:
        """The VoiceAgent, parsed once per generation: every agent is looked at every period."""
        meta = body["metadata"]
        key, stamp = (meta["namespace"], meta["name"]), (meta.get("uid"), meta.get("generation"))
        hit = self._parsed.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        try:
            agent: VoiceAgent | None = VoiceAgent.model_validate(body)
        except ValidationError:
            agent = None  # its reconcile reports it
        self._parsed[key] = (stamp, agent)
        return agent

    async def _groups(self) -> dict[Credentials, dict[str, Polled]]:
        """Polled agents by LiveKit server: agent name -> VoiceAgent."""
        groups: dict[Credentials, dict[str, Polled]] = {}
        now = time.monotonic()
        seen = set()
        for body in self._cache.items(contract.VOICE_AGENT_KIND):
            meta = body["metadata"]
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            agent = self._parse(body)
            if agent is None or meta.get("deletionTimestamp"):
                continue
            if now < self._no_credentials.get(key, 0.0):
                continue
            creds = await self._credentials(agent, meta["namespace"])
            if isinstance(creds, Problem):
                # Its status already says so (SecretMissing, ...). A missing Secret is read
                # from the API each time: not every period for every such agent.
                self._no_credentials[key] = now + CREDENTIALS_RETRY_SECONDS
                continue
            polled = Polled(key, agent.spec.scaling.max_calls_per_pod)
            groups.setdefault(creds, {})[agent.effective_agent_name] = polled
        self._parsed = {k: v for k, v in self._parsed.items() if k in seen}
        self._no_credentials = {k: t for k, t in self._no_credentials.items() if t > now}
        return groups

    async def look(self) -> None:
        groups = await self._groups()
        counts = {a.key: 0 for agents in groups.values() for a in agents.values()}
        pods = {
            key: self._cache.with_label("Pod", key[0], self._pod_label, key[1]) for key in counts
        }
        for creds, agents in groups.items():
            book = self._books.setdefault(creds, WaitingBook())
            held = set().union(*(held_dispatches(pods[a.key]) for a in agents.values()))
            try:
                async with LiveKitRooms(*creds, self._allowed) as lk:
                    now = time.monotonic()
                    # The pods were read before LiveKit: a dispatch a worker held then and that
                    # LiveKit still shows jobless is being joined, not waiting.
                    jobless = await lk.jobless(agents, book, now)
                    taken = [c for c in jobless if c.dispatch_id not in held]
                    waiting, due = book.update(taken, now)
                    for call in waiting:
                        counts[agents[call.agent_name].key] += 1
                    for call in due:
                        agent = agents[call.agent_name]
                        if workers_with_room(self._cache, agent, self._pod_label):
                            await lk.redispatch(call)
                            log.info(
                                "VoiceAgent %s/%s: call in room %s handed to LiveKit again",
                                *agent.key,
                                call.room,
                            )
                self._failing.discard(creds[0])
            except WaitingError as exc:
                if creds[0] not in self._failing:
                    log.warning("cannot look for waiting calls: %s", exc)
                    self._failing.add(creds[0])
                for agent in agents.values():
                    counts.pop(agent.key, None)  # unknown, not 0
        self._books = {c: b for c, b in self._books.items() if c in groups}
        self._publish(counts, {k: calls_in_progress(pods[k]) for k in counts})

    def _publish(self, counts: dict[AgentKey, int], in_progress: dict[AgentKey, int]) -> None:
        """``counts``: the waiting calls per agent looked at; ``in_progress``: its workers'
        calls, read in the same look (their sum is what the autoscaler scales on)."""
        for key in self.counts.keys() - counts.keys():
            WAITING_CALLS.remove(*key)
            AGENT_CALLS.remove(*key)
            self._changed(key)
        for key, n in counts.items():
            WAITING_CALLS.labels(*key).set(n)
            AGENT_CALLS.labels(*key).set(n + in_progress[key])
            if self.counts.get(key) != n:
                self._changed(key)
        self.counts = counts
