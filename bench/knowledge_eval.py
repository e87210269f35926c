"""Retrieval quality of the knowledge base with a local embedder (tests/knowledge/eval/, or the
French set tests/knowledge/eval_fr/ with --set fr).

    python bench/knowledge_eval.py [--set en|fr] [--model all-MiniLM-L6-v2-static]
        [--redis-url URL] [--size 96 --overlap 16]

Starts its own Redis with search (kubevox_devenv) unless --redis-url/REDIS_URL is given,
ingests the evaluation documents, and prints recall@k and MRR for text-only, vector-only and
hybrid retrieval; for a set with unanswerable questions, also how close their nearest passage
comes compared with the answerable ones.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETS = {"en": ROOT / "tests" / "knowledge" / "eval", "fr": ROOT / "tests" / "knowledge" / "eval_fr"}
EVAL_DIR = SETS["en"]
for extra in (ROOT, ROOT / "operator", ROOT / "hack" / "devenv"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from kubevox_api import KnowledgeBase  # noqa: E402
from kubevox_api.knowledgebase import (  # noqa: E402
    LOCAL_EMBEDDING_MODEL,
    LOCAL_EMBEDDING_MODELS,
    Embedding,
)

from agent_runtime.knowledge import Embedder, Retriever, connect, ingest, make_embedder  # noqa: E402
from agent_runtime.knowledge.evaluation import (  # noqa: E402
    ModeScore,
    SetResult,
    evaluate,
    load_questions,
    load_unanswerable,
    nearest_similarity,
    similarity_table,
    table,
)


def eval_knowledge_base(
    size: int = 96, overlap: int = 16, index: str = "kb-eval", eval_dir: Path = EVAL_DIR
) -> KnowledgeBase:
    """One inline source per document, named after the file (the questions' labels)."""
    sources: list[dict[str, Any]] = [
        {"name": p.stem, "inline": p.read_text()} for p in sorted((eval_dir / "docs").iterdir())
    ]
    return KnowledgeBase.model_validate(
        {
            "metadata": {"name": "eval", "namespace": "default"},
            "spec": {
                "sources": sources,
                "chunking": {"sizeTokens": size, "overlapTokens": overlap},
                "store": {"redisUrlSecretRef": {"name": "r", "key": "url"}, "indexName": index},
            },
        }
    )


async def evaluate_set(
    url: str, embedder: Embedder, size: int, overlap: int, eval_dir: Path = EVAL_DIR
) -> SetResult:
    # Each set under an alias of its own ("kb-eval", "kb-eval_fr").
    kb = eval_knowledge_base(size, overlap, index=f"kb-{eval_dir.name}", eval_dir=eval_dir)
    client = connect(url)
    try:
        result = await ingest(kb, client, embedder)
        if not result.ok:
            raise SystemExit(f"ingestion failed: {result.message}")
        retriever = Retriever(client, kb.index_name, embedder)
        questions = load_questions(eval_dir / "questions.yaml")
        scores = await evaluate(retriever, questions)
        unanswerable = load_unanswerable(eval_dir / "questions.yaml")
        if not unanswerable:
            return SetResult(scores, [], [])
        answerable = await nearest_similarity(retriever, [q.q for q in questions])
        return SetResult(scores, answerable, await nearest_similarity(retriever, unanswerable))
    finally:
        await client.aclose()


async def run_eval(
    url: str, embedder: Embedder, size: int, overlap: int, eval_dir: Path = EVAL_DIR
) -> list[ModeScore]:
    return (await evaluate_set(url, embedder, size, overlap, eval_dir)).scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=sorted(SETS), default="en", dest="eval_set")
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--model", choices=LOCAL_EMBEDDING_MODELS, default=LOCAL_EMBEDDING_MODEL)
    args = ap.parse_args()
    embedder = make_embedder(Embedding(provider="local", model=args.model))
    eval_dir = SETS[args.eval_set]
    if args.redis_url:
        res = asyncio.run(evaluate_set(args.redis_url, embedder, args.size, args.overlap, eval_dir))
    else:
        from kubevox_devenv.redis import RedisSearchServer

        with RedisSearchServer() as server:
            res = asyncio.run(evaluate_set(server.url, embedder, args.size, args.overlap, eval_dir))
    n = res.scores[0].questions
    print(
        f"set {args.eval_set}: {n} questions, chunks of {args.size} tokens "
        f"(overlap {args.overlap}), {args.model}"
    )
    print(table(res.scores))
    if res.unanswerable_nearest:
        print("\nNearest passage's similarity (vector search):")
        print(similarity_table(res.answerable_nearest, res.unanswerable_nearest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
