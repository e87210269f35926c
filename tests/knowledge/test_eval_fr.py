"""Retrieval quality on the French evaluation set (tests/knowledge/eval_fr/: a town hall's
documents, 80 questions and 10 unanswerable ones) with the multilingual local model.

PROVISIONAL THRESHOLDS, to be set after the KnowledgeBase `language` work (issue #18) is merged:
on this branch full text still stems French in English and keeps French function words ("je",
"le", "est") in its OR-query, so text-only and hybrid are below vector-only here. The
thresholds below are today's figures less a margin (measured 2026-11-30, 96-token chunks:
text MRR@10 0.632, vector 0.737, hybrid 0.693; recall@5 0.725 / 0.900 / 0.812). Once full text
is French, the English test's rules apply (hybrid not worse than text or vector at k = 3 and 5)
and the issue's: French hybrid at least as good as English hybrid, which
``test_french_hybrid_as_good_as_english`` checks (expected to fail until then).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.knowledge import LocalEmbedder, MultilingualEmbedder
from agent_runtime.knowledge.chunking import ChunkingOptions, chunk_document
from agent_runtime.knowledge.extract import extract
from agent_runtime.knowledge.models import RawDocument

from .helpers import bench_module

ROOT = Path(__file__).resolve().parents[2]
FR = ROOT / "tests/knowledge/eval_fr"


def test_french_set_is_labelled_and_large_enough() -> None:
    """At least 50 answerable questions, some unanswerable, and every answer phrase in a passage
    of its source at both chunk sizes (a label no chunk can match would count as a miss)."""
    mod = bench_module()
    questions = mod.load_questions(FR / "questions.yaml")
    assert len(questions) >= 50
    assert len(mod.load_unanswerable(FR / "questions.yaml")) >= 5
    docs = [extract(RawDocument(p.stem, p.stem, p.read_bytes())) for p in (FR / "docs").iterdir()]
    assert {q.source for q in questions} == {d.source for d in docs}
    for size, overlap in ((96, 16), (256, 32)):
        chunks = [c for d in docs for c in chunk_document(d, ChunkingOptions(size, overlap))]
        unmatched = [
            q.q
            for q in questions
            if not any(c.source == q.source and q.answer.lower() in c.text.lower() for c in chunks)
        ]
        assert unmatched == [], (size, unmatched)


@pytest.mark.redis
async def test_multilingual_model_on_french(
    redis_server: RedisSearchServer,
    multilingual_embedder: MultilingualEmbedder,
    embedder: LocalEmbedder,
) -> None:
    mod = bench_module()
    result = await mod.evaluate_set(redis_server.url, multilingual_embedder, 96, 16, FR)
    scores = {s.mode: s for s in result.scores}
    vector, hybrid = scores["vector"], scores["hybrid"]
    # Provisional (see the module's docstring).
    assert vector.recall[5] >= 0.85, scores
    assert vector.mrr >= 0.70, scores
    assert hybrid.recall[5] >= 0.78, scores
    assert hybrid.mrr >= 0.65, scores
    # The point of the model: the English one finds far less in French (vector MRR 0.413).
    english = {s.mode: s for s in await mod.run_eval(redis_server.url, embedder, 96, 16, FR)}
    assert vector.mrr >= english["vector"].mrr + 0.2, (scores, english)
    assert vector.recall[5] >= english["vector"].recall[5] + 0.2, (scores, english)
    # Unanswerable questions come no closer than the answerable ones do on average.
    mean = sum(result.answerable_nearest) / len(result.answerable_nearest)
    assert max(result.unanswerable_nearest) < mean + 0.1, result


@pytest.mark.redis
@pytest.mark.xfail(
    reason="French full text is stemmed in English until the KnowledgeBase language is merged "
    "(issue #18); the thresholds are set after that merge",
    strict=False,
)
async def test_french_hybrid_as_good_as_english(
    redis_server: RedisSearchServer,
    multilingual_embedder: MultilingualEmbedder,
    embedder: LocalEmbedder,
) -> None:
    """Issue #18: French hybrid retrieval (multilingual model) at least as good as English
    hybrid retrieval (the default model) on recall@1, 3, 5 and MRR, chunks of 256 tokens (the
    default) and of 96."""
    mod = bench_module()
    for size, overlap in ((256, 32), (96, 16)):
        fr = await mod.run_eval(redis_server.url, multilingual_embedder, size, overlap, FR)
        en = await mod.run_eval(redis_server.url, embedder, size, overlap)
        fr_hybrid, en_hybrid = fr[-1], en[-1]
        assert fr_hybrid.mode == en_hybrid.mode == "hybrid"
        for k in (1, 3, 5):
            assert fr_hybrid.recall[k] >= en_hybrid.recall[k], (size, k, fr_hybrid, en_hybrid)
        assert fr_hybrid.mrr >= en_hybrid.mrr, (size, fr_hybrid, en_hybrid)
