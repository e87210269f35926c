"""Calls waiting for a worker: the signal that scales an agent up from zero pods, and the rescue
of a call that every worker refused.

LiveKit hands a call to a worker once, when its dispatch is created (a caller's token, a SIP
dispatch rule, or the API). With no worker of that agent name registered, or every one full, the
dispatch stays in the room with no job and nothing ever retries it: the caller waits in silence.

LiveKit's API lists a room's dispatches but not their jobs; a worker that took one has joined
the room as a participant of kind AGENT with attribute ``lk.agent.name``. So a call waits where a
room holds a caller and a dispatch to the agent, and no participant of that agent.

The operator looks for such rooms (``LiveKitRooms.jobless``), leaves out the dispatches a
worker already holds (its pod's ``kubevox.dev/dispatches``: it has taken the call and is joining),
keeps what it saw between looks (``WaitingBook``), counts them per agent
(``kubevox_waiting_calls``, ``status.waitingCalls``, and with the workers' calls in the same look
``kubevox_agent_calls``, which the KEDA query scales on) and hands each one to LiveKit again
(``redispatch``: delete, then create the same dispatch) until a worker takes it. LiveKit has no
watch for this, so it is polled, for every agent: a worker refuses a call while its load is at
the threshold (maxCallsPerPod calls, or its CPU saturated, e.g. by a process loading models
for the next call), and a refused call would otherwise never be offered again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from kubevox_api.contract import AGENT_NAME_ATTRIBUTE
from livekit import api
from livekit.api import ServerError

from .livekit_client import NETWORK, LiveKitClient
from .sip import as_problem, refused_problem

GRACE_SECONDS = 2.0
"""A dispatch seen without its agent for less than this may still be on its way to a worker
(LiveKit's job request is a round trip, then the worker joins): not counted as waiting yet."""
REDISPATCH_SECONDS = 5.0
"""A dispatch is handed to LiveKit again only after this long without its agent: deleting it
ends a job a slow worker has taken but not yet joined with (it joins first thing, well within
this), and a call that cannot be placed is offered again at most this often."""
RECHECK_SECONDS = 10.0
"""A room with none of the agents' dispatches is listed again after this long (a dispatch can be
added to an existing room), not on every poll."""


@dataclass(frozen=True)
class WaitingCall:
    """A room where someone waits, whose dispatch to ``agent_name`` has no job."""

    room: str
    room_sid: str
    dispatch_id: str
    agent_name: str
    metadata: str


def jobless_dispatches(
    rooms: Sequence[api.Room],
    dispatches: Mapping[str, Sequence[api.AgentDispatch]],
    participants: Mapping[str, Sequence[api.ParticipantInfo]],
    agent_names: Collection[str],
) -> list[WaitingCall]:
    """The dispatches to one of ``agent_names`` that no worker has joined for, in rooms where a
    caller still is (``dispatches`` and ``participants`` map a room name to what LiveKit listed
    for it). A room the caller left waits for nobody: LiveKit closes it after its timeout."""
    found = []
    for room in rooms:
        people = participants.get(room.name, ())
        if not any(p.kind != api.ParticipantInfo.Kind.AGENT for p in people):
            continue
        present = {agent_of(p) for p in people}
        found += [
            WaitingCall(room.name, room.sid, d.id, d.agent_name, d.metadata)
            for d in dispatches.get(room.name, ())
            if d.agent_name in agent_names and d.agent_name not in present
        ]
    return found


def agent_of(participant: api.ParticipantInfo) -> str | None:
    """The agent name a worker's participant joined for (None for callers)."""
    if participant.kind != api.ParticipantInfo.Kind.AGENT:
        return None
    return participant.attributes.get(AGENT_NAME_ATTRIBUTE)


@dataclass
class WaitingBook:
    """What the operator remembers of one LiveKit server between two looks. Ages are the
    operator's own (monotonic) clock, not LiveKit's timestamps: no clock skew to trust."""

    first_seen: dict[str, float] = field(default_factory=dict)
    """Dispatch id -> when it was first seen without a job."""
    waiting_rooms: set[str] = field(default_factory=set)
    """Sids of the rooms counted as waiting: they stay counted across a redispatch."""
    served: set[str] = field(default_factory=set)
    """Sids of rooms a worker of the agent has joined: not listed again."""
    unrelated: dict[str, float] = field(default_factory=dict)
    """Sid -> when a room with none of the agents' dispatches was last listed."""

    def needs_listing(self, room: api.Room, now: float) -> bool:
        if room.sid in self.served or room.num_participants == 0:
            return False
        return now - self.unrelated.get(room.sid, -RECHECK_SECONDS) >= RECHECK_SECONDS

    def listed(
        self,
        room: api.Room,
        ours: Sequence[api.AgentDispatch],
        people: Sequence[api.ParticipantInfo],
        now: float,
    ) -> None:
        present = {agent_of(p) for p in people}
        if ours and all(d.agent_name in present for d in ours):
            self.served.add(room.sid)
        if ours:
            self.unrelated.pop(room.sid, None)
        else:
            self.unrelated[room.sid] = now

    def forget_closed(self, rooms: Sequence[api.Room]) -> None:
        live = {r.sid for r in rooms}
        self.served &= live
        self.unrelated = {sid: t for sid, t in self.unrelated.items() if sid in live}

    def update(
        self, calls: Sequence[WaitingCall], now: float
    ) -> tuple[list[WaitingCall], list[WaitingCall]]:
        """Takes this look's jobless dispatches; returns the calls waiting (to count: jobless for
        GRACE_SECONDS, or already counted before a redispatch) and those due to be handed to
        LiveKit again (jobless for REDISPATCH_SECONDS)."""
        self.first_seen = {c.dispatch_id: self.first_seen.get(c.dispatch_id, now) for c in calls}

        def age(c: WaitingCall) -> float:
            return now - self.first_seen[c.dispatch_id]

        waiting = [c for c in calls if age(c) >= GRACE_SECONDS or c.room_sid in self.waiting_rooms]
        self.waiting_rooms = {c.room_sid for c in waiting}
        return waiting, [c for c in calls if age(c) >= REDISPATCH_SECONDS]


class WaitingError(Exception):
    """LiveKit could not be asked (the message names the URL, never a credential)."""


class LiveKitRooms(LiveKitClient):
    """The thin I/O layer: list rooms and their dispatches, and redispatch."""

    def refused(self, why: str) -> Exception:
        return WaitingError(refused_problem(self.url, why).message)

    async def jobless(
        self, agent_names: Collection[str], book: WaitingBook, now: float
    ) -> list[WaitingCall]:
        """This look's jobless dispatches of ``agent_names``: one ListRooms, and a ListDispatch
        and a ListParticipants per room the book does not already know about."""
        try:
            rooms = list((await self._lk.room.list_rooms(api.ListRoomsRequest())).rooms)
            book.forget_closed(rooms)
            dispatches: dict[str, list[api.AgentDispatch]] = {}
            people: dict[str, list[api.ParticipantInfo]] = {}
            for room in rooms:
                if not book.needs_listing(room, now):
                    continue
                try:
                    listed = await self._lk.agent_dispatch.list_dispatch(room.name)
                    ours = [d for d in listed if d.agent_name in agent_names]
                    if ours:
                        people[room.name] = list(
                            (
                                await self._lk.room.list_participants(
                                    api.ListParticipantsRequest(room=room.name)
                                )
                            ).participants
                        )
                except ServerError as exc:
                    if exc.status == 404:  # closed since the listing
                        continue
                    raise
                book.listed(room, ours, people.get(room.name, []), now)
                dispatches[room.name] = ours
        except (ServerError, *NETWORK) as exc:
            raise WaitingError(as_problem(exc, self.url).message) from None
        return jobless_dispatches(rooms, dispatches, people, agent_names)

    async def redispatch(self, call: WaitingCall) -> None:
        """Hand the call to LiveKit again: it offers the new dispatch to the workers registered
        now. The old one goes first, so that no call is ever taken by two workers."""
        try:
            await self._lk.agent_dispatch.delete_dispatch(call.dispatch_id, call.room)
            await self._lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=call.agent_name, room=call.room, metadata=call.metadata
                )
            )
        except ServerError as exc:
            if exc.status == 404:  # the caller hung up meanwhile
                return
            raise WaitingError(as_problem(exc, self.url).message) from None
        except NETWORK as exc:
            raise WaitingError(as_problem(exc, self.url).message) from None
