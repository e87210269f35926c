"""Ingest into a real Redis with search, then retrieve: hybrid, filters, no-op re-ingestion."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from agent_runtime.knowledge import LocalEmbedder, Retriever, ingest
from agent_runtime.knowledge.store import key_prefix, versions_key

from .helpers import HOTEL, HOTEL_QUESTIONS, make_kb

pytestmark = pytest.mark.redis


async def changes(client: aioredis.Redis) -> int:
    info = await client.info("persistence")
    return int(info["rdb_changes_since_last_save"])


async def test_ingest_then_query_returns_the_answering_chunk(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    kb = make_kb(index_name, HOTEL)
    result = await ingest(kb, client, embedder)
    assert result.ok, result.message
    assert result.changed, result.message
    assert (result.documents, result.chunks) == (3, 3)
    assert result.active_index
    assert result.active_index.startswith(f"{index_name}--")
    status = result.to_status()
    assert {"contentHash", "documents", "chunks", "durationSeconds", "sourceErrors"} <= set(status)

    retriever = Retriever(client, index_name, embedder)
    for question, source in HOTEL_QUESTIONS.items():
        for mode in ("hybrid", "vector"):
            top = await retriever.retrieve(question, top_k=2, mode=mode)  # type: ignore[arg-type]
            assert top[0].source == source, (question, mode, top)
            assert 0 < top[0].score <= 1
            assert top[0].rrf_score > 0
    # An exact keyword the embedding alone may not weigh: full text finds it.
    top = await retriever.retrieve("HotelGuest", top_k=1, mode="text")
    assert top[0].source == "wifi"
    assert top[0].text_score


async def test_filters_top_k_and_min_score(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    await ingest(make_kb(index_name, HOTEL), client, embedder)
    retriever = Retriever(client, index_name, embedder)
    only = await retriever.retrieve("where do I park?", top_k=5, sources=["wifi", "breakfast"])
    assert only
    assert {c.source for c in only} <= {"wifi", "breakfast"}
    assert len(await retriever.retrieve("where do I park?", top_k=1)) == 1
    strict = await retriever.retrieve("where do I park my car?", top_k=5, min_score=0.4)
    assert [c.source for c in strict] == ["parking"]
    assert await retriever.retrieve("quantum chromodynamics lattice", top_k=5, min_score=0.5) == []


async def test_unchanged_content_writes_nothing(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    kb = make_kb(index_name, HOTEL)
    first = await ingest(kb, client, embedder)
    before = await changes(client)
    again = await ingest(kb, client, embedder)
    assert again.ok
    assert not again.changed
    assert again.content_hash == first.content_hash
    assert again.active_index == first.active_index
    assert await changes(client) == before  # not a single write


async def test_changed_content_switches_version_and_drops_the_old(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    first = await ingest(make_kb(index_name, HOTEL), client, embedder)
    changed = [*HOTEL, {"name": "spa", "inline": "The spa opens at 8 am; sauna towels are free."}]
    second = await ingest(make_kb(index_name, changed), client, embedder)
    assert second.ok
    assert second.changed
    assert second.active_index != first.active_index
    indexes = {i.decode() for i in await client.execute_command("FT._LIST")}
    assert first.active_index not in indexes
    assert second.active_index in indexes
    old_version = str(first.active_index).rsplit("--", 1)[1]
    assert [k async for k in client.scan_iter(f"{key_prefix(index_name, old_version)}*")] == []
    assert await client.smembers(versions_key(index_name)) == {  # type: ignore[misc]
        str(second.active_index).rsplit("--", 1)[1].encode()
    }
    top = await Retriever(client, index_name, embedder).retrieve("is the sauna towel free?", 1)
    assert top[0].source == "spa"
