"""``kubevox-agent query -f knowledgebase.yaml "question"``: what an agent would retrieve."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent_runtime.knowledge import Chunk, Retriever
from agent_runtime.knowledge.errors import KnowledgeError
from agent_runtime.knowledge.manifest import embedder_for, load_knowledge_base, redis_url

NAME = "query"
HELP = "show the chunks a KnowledgeBase returns for a question"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register on an argparse sub-parser set (the dispatcher may call add_arguments instead)."""
    p: argparse.ArgumentParser = subparsers.add_parser(NAME, help=HELP, description=HELP)
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--file", type=Path, required=True, help="KnowledgeBase manifest (YAML)")
    p.add_argument("question", nargs="+", help="the question, as a caller would ask it")
    p.add_argument("--redis-url", help="Redis with the search module (default: $REDIS_URL)")
    p.add_argument("-k", "--top-k", type=int, default=4, help="chunks to return (default 4)")
    p.add_argument("--min-score", type=float, default=0.0, help="minimum cosine similarity")
    p.add_argument("--source", action="append", help="only this source (repeatable)")
    p.add_argument("--mode", choices=("hybrid", "vector", "text"), default="hybrid")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    try:
        kb = load_knowledge_base(args.file)
        url = redis_url(args.redis_url)
        embedder = embedder_for(kb) if args.mode != "text" else None
    except KnowledgeError as exc:
        print(f"query: {exc}", file=sys.stderr)
        return 2
    question = " ".join(args.question)
    try:
        chunks, elapsed = asyncio.run(_query(url, kb.index_name, embedder, question, args))
    except KnowledgeError as exc:
        print(f"query: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"index": kb.index_name, "question": question,
                          "chunks": [asdict(c) for c in chunks]}, indent=2))  # fmt: skip
        return 0
    print(f"{len(chunks)} chunk(s) from {kb.index_name} in {elapsed * 1000:.1f} ms")
    for i, c in enumerate(chunks, 1):
        print(f"\n[{i}] score={c.score:.3f} rrf={c.rrf_score:.3f} source={c.source}"
              f" document={c.document}"
              f" #{c.position}\n    {c.text.replace(chr(10), chr(10) + '    ')}")  # fmt: skip
    return 0


async def _query(
    url: str, index: str, embedder: Any, question: str, args: argparse.Namespace
) -> tuple[list[Chunk], float]:
    retriever = Retriever.from_url(url, index, embedder)
    try:
        if embedder is not None:
            await embedder.embed_query("warm up")  # the first run loads the model; not timed
        t0 = time.perf_counter()
        chunks = await retriever.retrieve(
            question, args.top_k, min_score=args.min_score, sources=args.source, mode=args.mode
        )
        return chunks, time.perf_counter() - t0
    finally:
        await retriever.aclose()
