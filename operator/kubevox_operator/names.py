"""Who claims which LiveKit agent name: two VoiceAgents registering under one name on one LiveKit
server would share each other's calls, so every such pair is reported on both. Pure."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kubevox_api import default_agent_name

from .status import Problem

Obj = dict[str, Any]
Key = tuple[str, str, str]
Claim = tuple[str, str]
"""(LiveKit endpoint, agent name)."""
_SCHEMES = {
    "ws": ("http", 80),
    "http": ("http", 80),
    "wss": ("https", 443),
    "https": ("https", 443),
}


def livekit_endpoint(url: str) -> str:
    """One spelling per LiveKit server: ws and http (wss and https) reach the same API, and the
    host is case-insensitive."""
    parts = urlsplit(url.strip())
    scheme, default_port = _SCHEMES.get(parts.scheme.lower(), (parts.scheme.lower(), 0))
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}{parts.path.rstrip('/')}"


def agent_claim(body: Obj) -> Claim | None:
    """The (endpoint, agent name) a VoiceAgent body registers under; read from the raw object so
    that indexing every event costs no model validation."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    url = (spec.get("livekit") or {}).get("url")
    if not url or meta.get("deletionTimestamp"):
        return None
    name = spec.get("agentName") or default_agent_name(
        str(meta.get("namespace") or "default"), str(meta.get("name", ""))
    )
    return livekit_endpoint(str(url)), str(name)


class Claims:
    """Index of the claims of every VoiceAgent the operator sees."""

    def __init__(self) -> None:
        self._of: dict[Key, Claim] = {}
        self._by: dict[Claim, set[Key]] = {}

    def update(self, key: Key, claim: Claim | None) -> set[Key]:
        """Records ``key``'s claim (None: gone). Returns the other agents whose conflict may
        have started or ended with this change (they must look again)."""
        old = self._of.get(key)
        if old == claim:
            return set()
        touched: set[Key] = set()
        if old is not None:
            members = self._by[old]
            members.discard(key)
            touched |= members
            if not members:
                del self._by[old]
            del self._of[key]
        if claim is not None:
            self._of[key] = claim
            members = self._by.setdefault(claim, set())
            touched |= members
            members.add(key)
        return touched

    def others(self, key: Key) -> list[Key]:
        claim = self._of.get(key)
        return sorted(self._by.get(claim, set()) - {key}) if claim else []


def conflict_problem(agent_name: str, url: str, others: list[Key]) -> Problem | None:
    if not others:
        return None
    names = ", ".join(f"VoiceAgent {ns}/{name}" for _, ns, name in others)
    return Problem(
        "AgentNameConflict",
        f"LiveKit agent name {agent_name!r} at {url} is also claimed by {names}: calls to it "
        "would be shared between their workers; give each a distinct spec.agentName (or leave "
        "it unset for the unique default <namespace>.<name>)",
    )
