"""One worker per call, whatever LiveKit did.

A call can reach two workers of the same agent: the operator hands a call no worker took to
LiveKit again (delete its dispatch, create it anew), and a worker that had accepted the first
dispatch but was still waiting for a free process ignores LiveKit's termination of that job
(livekit-agents only ends jobs that run) and joins later. A room can also simply hold two
dispatches of the agent. The caller must hear one agent: the worker that joined first serves,
any later one leaves before saying a word.

LiveKit adds participants to a room one at a time, and a participant that connects is told of
everyone already there; so of two workers, the later one always sees the earlier one when it
connects, and checking once, then, is enough.
"""

from __future__ import annotations

import math

from kubevox_api.contract import AGENT_NAME_ATTRIBUTE
from livekit import rtc


def _order(participant: rtc.Participant) -> tuple[float, str]:
    """Join time (ms, by the LiveKit server's clock), then identity to break a tie."""
    joined = participant.joined_at
    return (joined.timestamp() if joined is not None else math.inf, participant.identity)


def earlier_worker(room: rtc.Room, agent_name: str) -> rtc.RemoteParticipant | None:
    """A worker of ``agent_name`` that joined ``room`` before this one, if any."""
    mine = _order(room.local_participant)
    return next(
        (
            p
            for p in room.remote_participants.values()
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            and p.attributes.get(AGENT_NAME_ATTRIBUTE) == agent_name
            and _order(p) < mine
        ),
        None,
    )
