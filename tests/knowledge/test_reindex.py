"""Zero-downtime re-indexing: a reader querying in a loop never fails and never comes back
empty while new versions are built and the alias switches."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.knowledge import LocalEmbedder, Retriever, ingest

from .helpers import make_kb

pytestmark = pytest.mark.redis


def faq(version: int) -> list[dict[str, str]]:
    # Enough text for a few dozen chunks, so a build takes a while and overlaps the reader.
    body = "\n\n".join(
        f"## Question {i}\n\nRoom type {i} costs {100 + i + version} euros per night in "
        f"price list version {version}. Late check-out for room type {i} is possible until "
        f"{1 + i % 4} pm."
        for i in range(24)
    )
    return [{"name": "prices", "inline": f"# Prices\n\n{body}"}]


async def test_concurrent_reader_sees_no_failure_during_switches(
    redis_server: RedisSearchServer,
    client: aioredis.Redis,
    embedder: LocalEmbedder,
    index_name: str,
) -> None:
    assert (await ingest(make_kb(index_name, faq(0), chunking={"sizeTokens": 48,
            "overlapTokens": 8}), client, embedder)).ok  # fmt: skip
    reader = Retriever.from_url(redis_server.url, index_name, embedder)
    stats = {"queries": 0, "failed": 0, "empty": 0}
    versions_seen: set[str] = set()
    stop = asyncio.Event()

    async def read_loop() -> None:
        while not stop.is_set():
            try:
                chunks = await reader.retrieve("how much is room type 7 per night?", top_k=3)
            except Exception:
                stats["failed"] += 1
            else:
                stats["empty"] += not chunks
                versions_seen.update(c.text.split("version ")[1][:1] for c in chunks[:1])
            stats["queries"] += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(read_loop())
    for version in (1, 2):
        kb = make_kb(index_name, faq(version), chunking={"sizeTokens": 48, "overlapTokens": 8})
        result = await ingest(kb, client, embedder)
        assert result.ok, result.message
        assert result.changed, result.message
    await asyncio.sleep(0.05)
    stop.set()
    await task
    await reader.aclose()

    assert stats["queries"] > 50, stats
    assert stats["failed"] == 0, stats
    assert stats["empty"] == 0, stats
    assert "2" in versions_seen, versions_seen
    assert len(versions_seen) >= 2, versions_seen
    assert result.chunks >= 20
    live = [
        i for i in await client.execute_command("FT._LIST") if i.decode().startswith(index_name)
    ]
    assert len(live) == 1
