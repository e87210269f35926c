"""Retrieval quality on the evaluation set (tests/knowledge/eval/): hybrid is not worse than
text-only or vector-only where it matters for a voice turn (the few chunks given to the LLM)."""

from __future__ import annotations

import pytest
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.knowledge import LocalEmbedder, StaticEmbedder

from .helpers import bench_module

pytestmark = pytest.mark.redis


async def test_hybrid_not_worse_than_text_or_vector(
    redis_server: RedisSearchServer, embedder: LocalEmbedder
) -> None:
    mod = bench_module()
    assert len(mod.load_questions(mod.EVAL_DIR / "questions.yaml")) >= 50
    scores = {s.mode: s for s in await mod.run_eval(redis_server.url, embedder, 96, 16)}
    text, vector, hybrid = scores["text"], scores["vector"], scores["hybrid"]
    for k in (3, 5):
        assert hybrid.recall[k] >= max(text.recall[k], vector.recall[k]), (k, scores)
    assert hybrid.mrr >= text.mrr
    assert vector.recall[5] >= 0.9
    assert hybrid.recall[5] >= 0.95


async def test_static_model_quality_with_hybrid(
    redis_server: RedisSearchServer, static_embedder: StaticEmbedder
) -> None:
    """The static model is weaker on paraphrases; hybrid search must make up for it."""
    mod = bench_module()
    scores = {s.mode: s for s in await mod.run_eval(redis_server.url, static_embedder, 96, 16)}
    text, vector, hybrid = scores["text"], scores["vector"], scores["hybrid"]
    for k in (3, 5):
        assert hybrid.recall[k] >= max(text.recall[k], vector.recall[k]), (k, scores)
    assert hybrid.mrr >= max(text.mrr, vector.mrr), scores
    assert vector.recall[5] >= 0.85
    assert hybrid.recall[5] >= 0.95


async def test_a_knowledge_base_in_english_and_french(
    redis_server: RedisSearchServer, embedder: LocalEmbedder
) -> None:
    """The evaluation set and its French translation (the parallel set's documents and
    questions) in one knowledge base, ``auto``: English questions keep their quality, and French
    ones, searched in French, do better than with everything stemmed in English (what a mixed
    knowledge base was before languages). Measured 2026-11-30 (default model, 96-token chunks):
    English hybrid MRR@10 0.920, recall@5 1.000, as with everything in English; French text MRR
    0.833 (0.719 in English), hybrid 0.739 (0.667), recall@5 0.917."""
    mod = bench_module()
    detected = await mod.run_mixed_eval(redis_server.url, embedder, 96, 16, "detected")
    english = await mod.run_mixed_eval(redis_server.url, embedder, 96, 16, "english")
    en = {s.mode: s for s in detected["en"]}
    fr = {s.mode: s for s in detected["fr"]}
    before = {lang: {s.mode: s for s in scores} for lang, scores in english.items()}
    assert len(mod.french_questions()) >= 50
    assert en["hybrid"].recall[5] >= 0.95, en
    assert en["hybrid"].mrr >= 0.9, en
    assert en["hybrid"].mrr >= before["en"]["hybrid"].mrr, (en, before["en"])
    assert fr["hybrid"].recall[5] >= 0.87, fr
    assert fr["text"].mrr >= 0.78, fr
    assert fr["text"].mrr >= before["fr"]["text"].mrr + 0.05, (fr, before["fr"])
    assert fr["hybrid"].mrr > before["fr"]["hybrid"].mrr, (fr, before["fr"])
