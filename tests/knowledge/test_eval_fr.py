"""Retrieval quality on the French evaluation sets with the multilingual local model: the town
hall (tests/knowledge/eval_fr_townhall/: 80 questions, 10 unanswerable) and the English set
translated (tests/knowledge/eval_fr_parallel/: the same 72 questions, the same 10 unanswerable,
see test_eval_sets.py). Their labels are checked with the English set's in test_eval_sets.py.

PROVISIONAL THRESHOLDS, to be set after the KnowledgeBase `language` work (issue #18) is merged:
on this branch full text still stems French in English and keeps French function words ("je",
"le", "est") in its OR-query, so text-only and hybrid are below vector-only on the town hall
set. The thresholds below are its figures today less a margin (measured 2026-11-30, 96-token chunks:
text MRR@10 0.632, vector 0.737, hybrid 0.693; recall@5 0.725 / 0.900 / 0.812). Once full text
is French, the English test's rules apply (hybrid not worse than text or vector at k = 3 and 5)
and the issue's: French hybrid at least as good as English hybrid, which
``test_french_hybrid_as_good_as_english`` checks on both French sets (expected to fail until
then; the parallel set is the fair comparison, the town hall's questions being harder).
"""

from __future__ import annotations

import pytest
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.knowledge import LocalEmbedder, MultilingualEmbedder

from .helpers import bench_module

FR = bench_module().SETS["fr-townhall"]


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
@pytest.mark.parametrize("french", ["fr-parallel", "fr-townhall"])
@pytest.mark.xfail(
    reason="French full text is stemmed in English until the KnowledgeBase language is merged "
    "(issue #18); the thresholds are set after that merge",
    strict=False,
)
async def test_french_hybrid_as_good_as_english(
    redis_server: RedisSearchServer,
    multilingual_embedder: MultilingualEmbedder,
    embedder: LocalEmbedder,
    french: str,
) -> None:
    """Issue #18: French hybrid retrieval (multilingual model) at least as good as English
    hybrid retrieval (the default model) on recall@1, 3, 5 and MRR, chunks of 256 tokens (the
    default) and of 96."""
    mod = bench_module()
    for size, overlap in ((256, 32), (96, 16)):
        fr_set = mod.SETS[french]
        fr = await mod.run_eval(redis_server.url, multilingual_embedder, size, overlap, fr_set)
        en = await mod.run_eval(redis_server.url, embedder, size, overlap)
        fr_hybrid, en_hybrid = fr[-1], en[-1]
        assert fr_hybrid.mode == en_hybrid.mode == "hybrid"
        for k in (1, 3, 5):
            assert fr_hybrid.recall[k] >= en_hybrid.recall[k], (size, k, fr_hybrid, en_hybrid)
        assert fr_hybrid.mrr >= en_hybrid.mrr, (size, fr_hybrid, en_hybrid)
