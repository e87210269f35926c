"""A browser call's LiveKit token: one new room, the agent dispatched to it when the caller's
join creates it, and nothing else (no other room, no listing, no admin)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from livekit import api

ROOM_PREFIX = "web-"


@dataclass(frozen=True)
class CallGrant:
    room: str
    identity: str
    token: str


def call_grant(
    *,
    api_key: str,
    api_secret: str,
    agent_name: str,
    metadata: dict[str, str],
    ttl_seconds: int,
) -> CallGrant:
    """A token for a fresh room (``web-`` and 16 random hex digits). LiveKit starts the
    token's agent dispatch only when this join creates the room, which a fresh name ensures."""
    room = f"{ROOM_PREFIX}{secrets.token_hex(8)}"
    identity = f"caller-{secrets.token_hex(4)}"
    dispatch = api.RoomAgentDispatch(
        agent_name=agent_name, metadata=json.dumps({"caller": metadata})
    )
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_name("Caller")
        .with_ttl(timedelta(seconds=ttl_seconds))
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=room,
                can_publish=True,
                can_subscribe=True,
                can_publish_data=True,  # the page's text messages, if any
            )
        )
        .with_room_config(api.RoomConfiguration(agents=[dispatch]))
        .to_jwt()
    )
    return CallGrant(room=room, identity=identity, token=token)
