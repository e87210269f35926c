"""Knowledge stores for the grounding tests, until the knowledge-base package's retriever lands.

``KeywordStore`` is a tiny real store (word overlap scoring); ``RedisDownStore`` talks to a Redis
port where nothing listens, so its failure is a genuine connection error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis


@dataclass(frozen=True)
class Chunk:
    """A retrieved chunk (grounding's ``RetrievedChunk``), for stores and hand-made contexts."""

    text: str
    source: str = "doc"
    score: float = 1.0


def _words(s: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", s.lower()))


class KeywordStore:
    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = docs
        self.queries: list[str] = []

    async def retrieve(self, query: str, top_k: int) -> Sequence[Chunk]:
        self.queries.append(query)
        q = _words(query)
        scored = [
            Chunk(text, src, len(q & _words(text)) / max(len(q), 1))
            for src, text in self.docs.items()
        ]
        return sorted((c for c in scored if c.score > 0), key=lambda c: -c.score)[:top_k]


class RedisDownStore:
    def __init__(self, port: int) -> None:
        self.client = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        self.calls = 0

    async def retrieve(self, query: str, top_k: int) -> Sequence[Chunk]:
        self.calls += 1
        await self.client.ping()  # raises ConnectionError: nothing listens there
        return []
