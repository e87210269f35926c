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
    """The evaluation set with four of its pages also in French (eval/fr/), ``auto``: English
    questions keep their quality, and French ones, searched in French, do better than with
    everything stemmed in English (what a mixed knowledge base was before languages)."""
    mod = bench_module()
    detected = await mod.run_mixed_eval(redis_server.url, embedder, 96, 16, "detected")
    english = await mod.run_mixed_eval(redis_server.url, embedder, 96, 16, "english")
    en = {s.mode: s for s in detected["en"]}
    fr = {s.mode: s for s in detected["fr"]}
    assert len(mod.load_questions(mod.EVAL_DIR / "fr/questions.yaml")) >= 25
    assert en["hybrid"].recall[5] >= 0.95, en
    assert en["hybrid"].mrr >= 0.9, en
    assert fr["hybrid"].recall[5] >= 0.9, fr
    assert fr["text"].mrr >= 0.8, fr
    before = {s.mode: s for s in english["fr"]}
    assert fr["hybrid"].mrr > before["hybrid"].mrr, (fr, before)
