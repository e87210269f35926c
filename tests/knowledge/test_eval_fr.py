"""Retrieval quality on the French evaluation sets with the multilingual local model, each set
indexed as ``language: fr`` (French stems and stop words): the English set translated
(tests/knowledge/eval_fr_parallel/: the same 72 questions, the same 10 unanswerable, as far from
their documents' words, see test_eval_sets.py) and the town hall (tests/knowledge/eval_fr_townhall/:
80 questions, 10 unanswerable, more paraphrased). Their labels are checked in test_eval_sets.py.

Thresholds are the figures measured 2026-11-30 (docs/benchmarks.md, "French and English side by
side") less a margin like the English test's (test_eval.py), and the issue's rule (#18): French
hybrid retrieval at least as good as English hybrid retrieval on the same measures, checked on
the parallel set, the only one where a difference is the language's.
"""

from __future__ import annotations

import pytest
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.knowledge import LocalEmbedder, MultilingualEmbedder

from .helpers import bench_module

pytestmark = pytest.mark.redis

MOD = bench_module()
PARALLEL = MOD.SETS["fr-parallel"]
TOWNHALL = MOD.SETS["fr-townhall"]


async def test_multilingual_model_on_the_parallel_set(
    redis_server: RedisSearchServer, multilingual_embedder: MultilingualEmbedder
) -> None:
    """The English test's rules on the translated set, 96-token chunks: hybrid not worse than
    text-only or vector-only at k = 3 and 5, nor in MRR. Measured: text MRR@10 0.836, vector
    0.822, hybrid 0.878; recall@5 0.972 / 0.944 / 0.986."""
    scores = {
        s.mode: s
        for s in await MOD.run_eval(redis_server.url, multilingual_embedder, 96, 16, PARALLEL)
    }
    text, vector, hybrid = scores["text"], scores["vector"], scores["hybrid"]
    for k in (3, 5):
        assert hybrid.recall[k] >= max(text.recall[k], vector.recall[k]), (k, scores)
    assert hybrid.mrr >= max(text.mrr, vector.mrr), scores
    assert vector.recall[5] >= 0.9, scores
    assert hybrid.recall[5] >= 0.95, scores
    assert hybrid.mrr >= 0.83, scores


async def test_multilingual_model_on_the_town_hall(
    redis_server: RedisSearchServer,
    multilingual_embedder: MultilingualEmbedder,
    embedder: LocalEmbedder,
) -> None:
    """The independent set, 96-token chunks. Measured: text MRR@10 0.661, vector 0.737, hybrid
    0.750; recall@5 0.762 / 0.900 / 0.900. Its questions paraphrase more (lexical overlap 0.42
    against 0.64), so hybrid is not better than vector at every k here (recall@3 0.825 against
    0.875): only at k = 5 and in MRR."""
    result = await MOD.evaluate_set(redis_server.url, multilingual_embedder, 96, 16, TOWNHALL)
    scores = {s.mode: s for s in result.scores}
    text, vector, hybrid = scores["text"], scores["vector"], scores["hybrid"]
    assert vector.recall[5] >= 0.85, scores
    assert vector.mrr >= 0.69, scores
    assert hybrid.recall[5] >= 0.85, scores
    assert hybrid.mrr >= 0.70, scores
    assert hybrid.recall[5] >= vector.recall[5], scores
    assert hybrid.mrr >= max(text.mrr, vector.mrr), scores
    # The point of the model: the English one finds far less in French (vector MRR 0.413).
    english = {s.mode: s for s in await MOD.run_eval(redis_server.url, embedder, 96, 16, TOWNHALL)}
    assert vector.mrr >= english["vector"].mrr + 0.2, (scores, english)
    assert vector.recall[5] >= english["vector"].recall[5] + 0.2, (scores, english)
    # Unanswerable questions come no closer than the answerable ones do on average.
    mean = sum(result.answerable_nearest) / len(result.answerable_nearest)
    assert max(result.unanswerable_nearest) < mean + 0.1, result


@pytest.mark.parametrize(
    ("size", "overlap"),
    [
        (256, 32),
        pytest.param(
            96,
            16,
            marks=pytest.mark.xfail(
                reason="chunks are counted in the English model's WordPiece tokens, of which "
                "French needs 1.8 times as many (79 chunks of 96 tokens instead of 48): a French "
                "passage holds less of its section. Measured 2026-11-30: French hybrid recall@1 "
                "0.792, @3 0.958, @5 0.986, MRR@10 0.878 against English 0.861 / 0.972 / 1.000 "
                "/ 0.918 (default model) and 0.847 / 0.931 / 0.944 / 0.896 (multilingual)",
                strict=True,
            ),
        ),
    ],
)
async def test_french_hybrid_as_good_as_english(
    redis_server: RedisSearchServer,
    multilingual_embedder: MultilingualEmbedder,
    embedder: LocalEmbedder,
    size: int,
    overlap: int,
) -> None:
    """Issue #18: French hybrid retrieval (the multilingual model, ``language: fr``) at least as
    good as English hybrid retrieval on recall@1, 3, 5 and MRR@10, on the parallel set, against
    English with the default model and with the multilingual one. It holds with 256-token chunks
    (the default): French 0.903 / 1.000 / 1.000 / 0.949, English 0.889 / 0.972 / 1.000 / 0.934
    (default model) and 0.833 / 0.917 / 0.944 / 0.888 (multilingual); not with 96 (xfail)."""
    french = await MOD.run_eval(redis_server.url, multilingual_embedder, size, overlap, PARALLEL)
    fr_hybrid = french[-1]
    assert fr_hybrid.mode == "hybrid"
    for english_embedder in (embedder, multilingual_embedder):
        en_hybrid = (await MOD.run_eval(redis_server.url, english_embedder, size, overlap))[-1]
        assert en_hybrid.mode == "hybrid"
        for k in (1, 3, 5):
            assert fr_hybrid.recall[k] >= en_hybrid.recall[k], (k, fr_hybrid, en_hybrid)
        assert fr_hybrid.mrr >= en_hybrid.mrr, (fr_hybrid, en_hybrid)
