"""The static embedding model distilled from MiniLM: sensible similarities, a deterministic
build keyed by its inputs, a clear failure when it is missing, and end-to-end retrieval."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from kubevox_api.knowledgebase import LOCAL_STATIC_EMBEDDING_MODEL

from agent_runtime.knowledge import (
    EmbeddingError,
    LocalEmbedder,
    Retriever,
    StaticEmbedder,
    ingest,
    make_embedder,
)
from agent_runtime.knowledge import static_model as sm
from agent_runtime.knowledge.store import meta_key

from .helpers import HOTEL, HOTEL_QUESTIONS, make_kb

TRIPLES = [
    ("When does the pharmacy open?", "The pharmacy opens at 9 am on weekdays.",
     "Parking in the garage costs 18 euros per night."),
    ("How much is parking?", "Guests park in the garage for 18 euros per night.",
     "Vegan breakfast options are available on request."),
    ("Is there a vegan breakfast?", "Breakfast has vegan and gluten-free options.",
     "The wifi password is printed on your key card."),
    ("I need a flu shot", "Influenza vaccinations are given every autumn at the clinic.",
     "Invoices can be paid by bank transfer within 30 days."),
]  # fmt: skip


def test_related_sentences_score_higher_than_unrelated(static_embedder: StaticEmbedder) -> None:
    for question, related, unrelated in TRIPLES:
        q, r, u = static_embedder.encode([question, related, unrelated])
        assert float(q @ r) > float(q @ u) + 0.05, (question, float(q @ r), float(q @ u))


def test_vectors_are_unit_length_and_batch_independent(static_embedder: StaticEmbedder) -> None:
    texts = ["Breakfast is served from 7 am.", "", "☃☃", "HotelGuest wifi " * 200, "parking"]
    batch = static_embedder.encode(texts)
    assert batch.shape == (len(texts), static_embedder.dimensions)
    norms = np.linalg.norm(batch, axis=1)
    # Text without a known token has no direction: a zero vector, never NaN.
    assert np.allclose(norms, [1, 0, 0, 1, 1], atol=1e-5), norms
    one_by_one = np.vstack([static_embedder.encode([t]) for t in texts])
    assert np.allclose(batch, one_by_one, atol=1e-6)


async def test_query_vector_matches_document_vector(static_embedder: StaticEmbedder) -> None:
    text = "Where can I charge my electric car?"
    doc = await static_embedder.embed_documents([text])
    assert np.allclose(await static_embedder.embed_query(text), doc[0])


def test_distillation_is_deterministic() -> None:
    ids = range(1996, 1996 + 600)  # a slice of the vocabulary keeps this test a few seconds
    first, second = sm.distill(ids), sm.distill(ids)
    assert first.shape == (600, sm.METHOD.pca_dims)
    assert np.array_equal(first, second)
    assert np.isfinite(first).all()
    # Zipf/SIF: frequent tokens (low ids) are scaled down relative to rare ones.
    weights = sm.zipf_weights(30522, sm.METHOD.sif)
    assert weights[1996] < weights[20000] <= 1


def test_cache_key_follows_the_method(monkeypatch: pytest.MonkeyPatch) -> None:
    before = sm.model_key()
    sm.model_key.cache_clear()
    monkeypatch.setattr(sm, "METHOD", dataclasses.replace(sm.METHOD, pca_dims=128))
    try:
        assert sm.model_key() != before
        assert before not in sm.file_name()
    finally:
        sm.model_key.cache_clear()


def test_model_dir_env_is_searched_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sm.MODEL_DIR_ENV, str(tmp_path))
    assert sm.search_dirs()[0] == tmp_path
    matrix = np.arange(12, dtype=np.float16).reshape(3, 4)
    np.save(tmp_path / sm.file_name(), matrix)
    assert sm.find() == tmp_path / sm.file_name()
    assert np.array_equal(sm.load(), matrix.astype(np.float32))


def test_missing_matrix_fails_fast_where_nothing_is_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    # Like a read-only root filesystem: every candidate directory fails to be created.
    monkeypatch.setattr(sm, "search_dirs", lambda: [blocker / "env", blocker / "cache"])
    t0 = time.monotonic()
    with pytest.raises(EmbeddingError, match=r"kubevox-agent build-static-model"):
        StaticEmbedder().encode(["anything"])
    assert time.monotonic() - t0 < 2


@pytest.mark.redis
async def test_ingest_and_retrieve_with_the_static_model(
    client: aioredis.Redis, static_embedder: StaticEmbedder, index_name: str
) -> None:
    kb = make_kb(index_name, HOTEL, embedding={"model": LOCAL_STATIC_EMBEDDING_MODEL})
    assert isinstance(make_embedder(kb.spec.embedding), StaticEmbedder)
    result = await ingest(kb, client, static_embedder)
    assert result.ok, result.message
    assert (result.documents, result.chunks) == (3, 3)
    meta = await client.hgetall(meta_key(index_name))  # type: ignore[misc]
    assert int(meta[b"dimensions"]) == static_embedder.dimensions
    retriever = Retriever(client, index_name, static_embedder)
    for question, source in HOTEL_QUESTIONS.items():
        for mode in ("hybrid", "vector"):
            top = await retriever.retrieve(question, top_k=2, mode=mode)  # type: ignore[arg-type]
            assert top[0].source == source, (question, mode, top)


@pytest.mark.redis
async def test_switching_local_models_reindexes(
    client: aioredis.Redis,
    static_embedder: StaticEmbedder,
    embedder: LocalEmbedder,
    index_name: str,
) -> None:
    static_kb = make_kb(index_name, HOTEL, embedding={"model": LOCAL_STATIC_EMBEDDING_MODEL})
    first = await ingest(static_kb, client, static_embedder)
    again = await ingest(static_kb, client, static_embedder)
    assert first.ok
    assert not again.changed
    transformer = await ingest(make_kb(index_name, HOTEL), client, embedder)
    assert transformer.ok, transformer.message
    assert transformer.changed
    assert transformer.content_hash != first.content_hash
    top = await Retriever(client, index_name, embedder).retrieve("where do I park?", 1)
    assert top[0].source == "parking"
