"""Retrieval quality of the knowledge base with a local embedder (tests/knowledge/eval/).

    python bench/knowledge_eval.py [--model all-MiniLM-L6-v2-static] [--redis-url URL]
        [--size 96 --overlap 16] [--mixed]

Starts its own Redis with search (kubevox_devenv) unless --redis-url/REDIS_URL is given,
ingests the evaluation documents, and prints recall@k and MRR for text-only, vector-only and
hybrid retrieval. ``--mixed``: the English documents and the French ones of eval/fr/ (four of
them translated) in one knowledge base, English and French questions scored apart, for each way
of searching a question's full text (:data:`STRATEGIES`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT / "tests" / "knowledge" / "eval"
for extra in (ROOT, ROOT / "operator", ROOT / "hack" / "devenv"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from kubevox_api import KnowledgeBase  # noqa: E402
from kubevox_api.knowledgebase import (  # noqa: E402
    LOCAL_EMBEDDING_MODEL,
    LOCAL_EMBEDDING_MODELS,
    Embedding,
)
from kubevox_api.languages import KnowledgeLanguage, TextLanguage  # noqa: E402

from agent_runtime.knowledge import Embedder, Retriever, connect, ingest, make_embedder  # noqa: E402
from agent_runtime.knowledge.evaluation import (  # noqa: E402
    ModeScore,
    evaluate,
    load_questions,
    table,
)


def eval_knowledge_base(size: int = 96, overlap: int = 16, index: str = "kb-eval") -> KnowledgeBase:
    """One inline source per document, named after the file (the questions' labels)."""
    sources: list[dict[str, Any]] = [
        {"name": p.stem, "inline": p.read_text()} for p in sorted((EVAL_DIR / "docs").iterdir())
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


async def run_eval(url: str, embedder: Embedder, size: int, overlap: int) -> list[ModeScore]:
    kb = eval_knowledge_base(size, overlap)
    client = connect(url)
    try:
        result = await ingest(kb, client, embedder)
        if not result.ok:
            raise SystemExit(f"ingestion failed: {result.message}")
        retriever = Retriever(client, kb.index_name, embedder)
        return await evaluate(retriever, load_questions(EVAL_DIR / "questions.yaml"))
    finally:
        await client.aclose()


STRATEGIES: dict[str, tuple[KnowledgeLanguage, list[TextLanguage] | None]] = {
    "english": ("en", ["en"]),
    "detected": ("auto", None),
    "every": ("auto", ["en", "fr"]),
}
"""How a mixed knowledge base is indexed and its questions searched: ``english``, as before
languages (every document and question stemmed in English); ``detected``, kubevox's (each
document in its detected language, each question in its own: ``terms.query_languages``);
``every``, each document in its language, each question in every language, best score kept."""


def mixed_knowledge_base(
    language: KnowledgeLanguage, size: int = 96, overlap: int = 16, index: str = "kb-eval-mixed"
) -> KnowledgeBase:
    """The English evaluation documents and the French ones, all in ``language``."""
    kb = eval_knowledge_base(size, overlap, index)
    french = [
        {"name": p.stem, "inline": p.read_text()}
        for p in sorted((EVAL_DIR / "fr" / "docs").iterdir())
    ]
    body = kb.to_k8s()
    body["spec"]["sources"] += french
    body["spec"]["language"] = language
    return KnowledgeBase.model_validate(body)


async def run_mixed_eval(
    url: str, embedder: Embedder, size: int, overlap: int, strategy: str = "detected"
) -> dict[str, list[ModeScore]]:
    """Scores of the English questions (``en``) and the French ones (``fr``)."""
    language, searched = STRATEGIES[strategy]
    kb = mixed_knowledge_base(language, size, overlap)
    client = connect(url)
    try:
        result = await ingest(kb, client, embedder)
        if not result.ok:
            raise SystemExit(f"ingestion failed: {result.message}")
        retriever = Retriever(client, kb.index_name, embedder)
        return {
            lang: await evaluate(retriever, load_questions(path), languages=searched)
            for lang, path in (
                ("en", EVAL_DIR / "questions.yaml"),
                ("fr", EVAL_DIR / "fr" / "questions.yaml"),
            )
        }
    finally:
        await client.aclose()


async def _mixed(url: str, embedder: Embedder, size: int, overlap: int) -> None:
    for strategy in STRATEGIES:
        scores = await run_mixed_eval(url, embedder, size, overlap, strategy)
        for lang, rows in scores.items():
            print(f"\n{strategy}, {lang} questions ({rows[0].questions}):")
            print(table(rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--model", choices=LOCAL_EMBEDDING_MODELS, default=LOCAL_EMBEDDING_MODEL)
    ap.add_argument("--mixed", action="store_true", help="English and French documents")
    args = ap.parse_args()
    embedder = make_embedder(Embedding(provider="local", model=args.model))
    if args.mixed:
        print(f"chunks of {args.size} tokens (overlap {args.overlap}), {args.model}")
        if args.redis_url:
            asyncio.run(_mixed(args.redis_url, embedder, args.size, args.overlap))
        else:
            from kubevox_devenv.redis import RedisSearchServer

            with RedisSearchServer() as server:
                asyncio.run(_mixed(server.url, embedder, args.size, args.overlap))
        return 0
    if args.redis_url:
        scores = asyncio.run(run_eval(args.redis_url, embedder, args.size, args.overlap))
    else:
        from kubevox_devenv.redis import RedisSearchServer

        with RedisSearchServer() as server:
            scores = asyncio.run(run_eval(server.url, embedder, args.size, args.overlap))
    n = scores[0].questions
    print(f"{n} questions, chunks of {args.size} tokens (overlap {args.overlap}), {args.model}")
    print(table(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
