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
