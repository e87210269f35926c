"""Common query terms score but do not select: the full-text half stays fast on large stores."""

from __future__ import annotations

import numpy as np
import pytest
import redis.asyncio as aioredis

from agent_runtime.grounding import Grounding, KnowledgeSource
from agent_runtime.knowledge import Retriever
from agent_runtime.knowledge.models import ChunkRecord
from agent_runtime.knowledge.store import KnowledgeStore, meta_key
from agent_runtime.knowledge.terms import common_terms, decode_common, text_query

# "room" is in every chunk, "garden" in one, "terrace" in two.
TEXTS = [
    "Breakfast is served in the garden room from seven.",
    "Every room has a kettle and two towels.",
    "The room safe opens with your own four digit code.",
    "Rooms on the terrace side are quieter at night.",
    "Late checkout keeps the room until two in the afternoon.",
    "The terrace bar serves drinks to any room number.",
]


def test_common_terms_count_documents_per_stem() -> None:
    # "Rooms" and "room" share a stem; each chunk counts once however often it says it.
    common = common_terms([(t, "en") for t in [*TEXTS, "room room room"]], cutoff=3)
    assert common == {"room": 7, "the": 5}  # stop words too: "having" matches "have"


def test_common_terms_stem_each_text_in_its_language() -> None:
    # RediSearch keeps one posting per stem, whatever language stemmed it: "pharmacies" is
    # "pharmac" in French (as "pharmacie") and "pharmaci" in English (as "pharmacy").
    texts = [("Les pharmacies de garde.", "fr"), ("La pharmacie est ouverte.", "fr")]
    assert common_terms(texts, cutoff=1) == {"pharmac": 2}
    texts = [("Pharmacies on duty.", "en"), ("The pharmacy is open.", "en")]
    assert common_terms(texts, cutoff=1) == {"pharmaci": 2}


def test_text_query_makes_common_words_optional() -> None:
    assert text_query("Is there a garden room?") == "garden|room"
    assert text_query("Is there a garden room?", {"room": 6}) == "(garden) ~room"
    # Only common words: the two rarest are required.
    assert text_query("a room view with a kettle", {"room": 6, "view": 2, "kettl": 3}) == (
        "(view kettle) ~room"
    )
    assert text_query("what is it?", {"room": 6}) is None
    assert decode_common(b'{"room":6}') == {"room": 6}
    assert decode_common(None) == decode_common(b"not json") == {}


def _chunks() -> list[ChunkRecord]:
    return [ChunkRecord(t, "hotel", f"doc{i}", "Hotel", i) for i, t in enumerate(TEXTS)]


def _vectors(n: int) -> np.ndarray:
    v = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.redis
async def test_retriever_follows_each_versions_common_terms(
    client: aioredis.Redis, index_name: str
) -> None:
    chunks = _chunks()
    store = KnowledgeStore(client, index_name, common_term_docs=3)
    await store.build("v1", "h1", chunks, _vectors(len(chunks)), 1, "test")
    common = decode_common(await client.hget(meta_key(index_name), "common_terms"))
    assert common == {"room": 6, "the": 5}

    retriever = Retriever(client, index_name, embedder=None)
    # The first query learns the version's common terms (and languages) before it searches.
    pruned = await retriever.retrieve("garden room", top_k=6, mode="text")
    assert [c.text for c in pruned] == [TEXTS[0]]
    alone = await retriever.retrieve("garden", top_k=6, mode="text")
    assert pruned[0].text_score
    assert alone[0].text_score
    assert pruned[0].text_score > alone[0].text_score, "the optional common word still scores"
    only_common = await retriever.retrieve("room", top_k=6, mode="text")
    assert len(only_common) == 6, "a question of common words still matches"

    # A call's new retriever learns them before its first question when grounding warms up.
    fresh = Retriever(client, index_name, embedder=None)
    await Grounding([KnowledgeSource("hotel", fresh, 6)], agent="a", namespace="n").warm()
    assert [c.text for c in await fresh.retrieve("garden room", top_k=6, mode="text")] == [TEXTS[0]]

    # A new version where nothing is common: the retriever notices the switch by itself.
    await KnowledgeStore(client, index_name).build(
        "v2", "h2", chunks, _vectors(len(chunks)), 1, "test"
    )
    await retriever.retrieve("garden room", top_k=6, mode="text")
    again = await retriever.retrieve("garden room", top_k=6, mode="text")
    assert len(again) == 6


async def test_warm_up_with_redis_down_is_harmless() -> None:
    retriever = Retriever.from_url("redis://127.0.0.1:1/0", "nowhere", None)
    await retriever.warm()  # logged, not raised: the first question reports the outage
    assert retriever._common == {}
    await retriever.aclose()
