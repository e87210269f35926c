"""An index belongs to the KnowledgeBase that built it first (issue #15): another one naming
the same store.indexName changes nothing in it, and what the owner's callers hear stays."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from agent_runtime.knowledge import LocalEmbedder, Retriever, ingest
from agent_runtime.knowledge.store import owner_key

pytestmark = pytest.mark.redis


def kb(ns: str, name: str, uid: str, index: str, text: str) -> Any:
    from kubevox_api import KnowledgeBase

    return KnowledgeBase.model_validate(
        {
            "metadata": {"name": name, "namespace": ns, "uid": uid},
            "spec": {
                "sources": [{"name": "hours", "inline": text}],
                "store": {
                    "redisUrlSecretRef": {"name": "redis", "key": "url"},
                    "indexName": index,
                },
            },
        }
    )


async def test_a_second_knowledge_base_cannot_take_over_an_index(
    client: aioredis.Redis, redis_server: Any, embedder: LocalEmbedder, index_name: str
) -> None:
    owner = kb("team-a", "docs", "uid-a", index_name, "The clinic opens at 8 am on Mondays.")
    first = await ingest(owner, client, embedder)
    assert first.ok
    intruder = kb("team-b", "docs", "uid-b", index_name, "The clinic opens at 3 am on Mondays.")
    second = await ingest(intruder, client, embedder)
    assert not second.ok
    assert second.reason == "IndexOwnedByOther"
    assert "team-a/docs" in second.message
    assert second.active_index is None  # nothing of the owner's index is reported to it either
    assert "uid-a" in (await client.get(owner_key(index_name))).decode()

    retriever = Retriever.from_url(redis_server.url, index_name, embedder)
    try:
        top = await retriever.retrieve("When does the clinic open on Mondays?", 1)
        assert "8 am" in top[0].text
        assert first.active_index is not None
        # The same KnowledgeBase re-created (a new uid, same namespace and name) keeps it.
        again = kb("team-a", "docs", "uid-a2", index_name, "The clinic opens at 9 am on Mondays.")
        assert (await ingest(again, client, embedder)).ok
        top = await retriever.retrieve("When does the clinic open on Mondays?", 1)
        assert "9 am" in top[0].text
        assert "uid-a2" in (await client.get(owner_key(index_name))).decode()
    finally:
        await retriever.aclose()
