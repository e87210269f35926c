"""Knowledge-base benchmark: ingestion throughput and query latency at 10k and 100k chunks.

    python bench/knowledge_bench.py [--model all-MiniLM-L6-v2-static] [--sizes 10000 100000]
        [--queries 300] [--ingest-sections 200] [--chunk-tokens 96 256]

Ingestion: the real pipeline (chunking, local embedder, Redis writes, alias switch) over
generated handbook text, once per ``--chunk-tokens`` size. Query latency: the store is filled
with chunks of 3-6 sentences sampled from the evaluation documents. With the static model their
vectors are REAL (it embeds 100k chunks in seconds); with the transformer they are SYNTHESIZED
random unit vectors, because embedding 100k chunks would take hours on 2 cores. Queries are the
evaluation questions; "+embed" includes embedding the question (never cached).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "operator", ROOT / "hack" / "devenv"):
    sys.path.insert(0, str(extra))

from kubevox_api import KnowledgeBase  # noqa: E402
from kubevox_api.knowledgebase import (  # noqa: E402
    LOCAL_EMBEDDING_MODEL,
    LOCAL_EMBEDDING_MODELS,
    Embedding,
)
from kubevox_devenv.redis import RedisSearchServer  # noqa: E402

from agent_runtime.knowledge import (  # noqa: E402
    LocalEmbedder,
    Retriever,
    StaticEmbedder,
    connect,
    ingest,
    make_embedder,
)
from agent_runtime.knowledge.evaluation import load_questions  # noqa: E402
from agent_runtime.knowledge.models import ChunkRecord  # noqa: E402
from agent_runtime.knowledge.store import KnowledgeStore  # noqa: E402

EVAL = ROOT / "tests" / "knowledge" / "eval"


def words() -> list[str]:
    text = " ".join(p.read_text() for p in (EVAL / "docs").iterdir())
    return sorted({w.lower().strip(".,:;()\"'") for w in text.split() if w.isascii()} - {""})


def sentences() -> list[str]:
    text = " ".join(p.read_text() for p in (EVAL / "docs").iterdir())
    text = re.sub(r"<[^>]+>|[#*|]", " ", text)
    return [x.strip() for x in re.split(r"(?<=[.?!])\s+", text) if len(x.split()) >= 4]


def faq_text(
    n_sections: int, rng: random.Random, vocab: list[str], words_per_section: int = 60
) -> str:
    parts = []
    for i in range(n_sections):
        body = " ".join(rng.choice(vocab) for _ in range(words_per_section))
        parts.append(f"## Topic {i}\n\n{body.capitalize()}.")
    return "# Generated handbook\n\n" + "\n\n".join(parts)


LocalModel = LocalEmbedder | StaticEmbedder


async def bench_ingest(url: str, emb: LocalModel, sections: int, size: int) -> dict[str, float]:
    rng = random.Random(7)
    # Sections of ~3 chunks of `size` tokens whatever the size; 20 sections per source keep each
    # under the inline source limit (256 KiB).
    vocab = words()
    sources = [
        {"name": f"handbook{i}", "inline": faq_text(20, rng, vocab, words_per_section=size * 2)}
        for i in range(max(1, sections // 20))
    ]
    kb = KnowledgeBase.model_validate({"metadata": {"name": "bench-ingest"}, "spec": {
        "sources": sources,
        "chunking": {"sizeTokens": size, "overlapTokens": 16},
        "store": {"redisUrlSecretRef": {"name": "r", "key": "url"}, "indexName": f"ingest{size}"},
    }})  # fmt: skip
    client = connect(url)
    t0 = time.perf_counter()
    result = await ingest(kb, client, emb)
    total = time.perf_counter() - t0
    await client.aclose()
    assert result.ok, result.message
    return {
        "chunks": result.chunks, "seconds": total, "embed_seconds": result.embedding_seconds,
        "chunks_per_s": result.chunks / total,
        "store_chunks_per_s": result.chunks / max(total - result.embedding_seconds, 1e-9),
    }  # fmt: skip


async def fill_store(
    url: str, alias: str, n: int, pool: list[str], emb: LocalModel
) -> tuple[float, float, str]:
    """Loads n chunks; returns (embedding seconds, load seconds, kind of vectors)."""
    rng = random.Random(n)
    client = connect(url, socket_timeout=120)
    store = KnowledgeStore(client, alias)
    chunks = [
        ChunkRecord(" ".join(rng.sample(pool, rng.randint(3, 6))), f"src{i % 20}",
                    f"doc{i % 500}", "Generated", i)
        for i in range(n)
    ]  # fmt: skip
    t0 = time.perf_counter()
    if isinstance(emb, StaticEmbedder):
        vecs, kind = emb.encode([c.text for c in chunks]), "real static-model"
    else:
        gen = np.random.default_rng(n)
        vecs = gen.standard_normal((n, emb.dimensions)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        kind = "synthesized random"
    t1 = time.perf_counter()
    await store.build(f"fill{n}", f"fill{n}", chunks, vecs, 500, emb.model_id)
    await client.aclose()
    return t1 - t0, time.perf_counter() - t1, kind


def pct(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1] * 1000


async def bench_queries(url: str, alias: str, emb: LocalModel, n: int) -> dict[str, float]:
    qs = [q.q for q in load_questions(EVAL / "questions.yaml")]
    retriever = Retriever.from_url(url, alias, emb)
    vecs = emb.encode(qs)
    out: dict[str, float] = {}
    for mode in ("hybrid", "vector"):
        for with_embedding in (False, True):
            samples = []
            for i in range(n + 20):
                q = qs[i % len(qs)]
                t0 = time.perf_counter()
                vec = emb.encode([q])[0] if with_embedding else vecs[i % len(qs)]
                await retriever.retrieve(q, 4, mode=mode, query_vector=vec)  # type: ignore[arg-type]
                if i >= 20:  # warm-up excluded
                    samples.append(time.perf_counter() - t0)
            key = f"{mode}{'+embed' if with_embedding else ''}"
            out[f"{key} p50"], out[f"{key} p95"] = pct(samples, 50), pct(samples, 95)
    await retriever.aclose()
    return out


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main_async(url: str, args: argparse.Namespace) -> None:
    emb = make_embedder(Embedding(provider="local", model=args.model))
    assert isinstance(emb, LocalEmbedder | StaticEmbedder)
    emb.encode(["warm up"])
    print(f"model {args.model} ({emb.model_id}); load average {load_average()}", flush=True)
    for size in args.chunk_tokens:
        ing = await bench_ingest(url, emb, args.ingest_sections, size)
        print(f"ingestion: {ing['chunks']} chunks of <={size} tokens in {ing['seconds']:.2f}s = "
              f"{ing['chunks_per_s']:.1f} chunks/s (embedding {ing['embed_seconds']:.2f}s; "
              f"everything but embedding {ing['store_chunks_per_s']:.0f} chunks/s)",
              flush=True)  # fmt: skip
    pool = sentences()
    for n in args.sizes:
        embed_s, load_s, kind = await fill_store(url, f"bench-{n}", n, pool, emb)
        print(f"\nstore of {n} chunks ({kind} vectors, embedded in {embed_s:.1f}s) loaded in "
              f"{load_s:.1f}s ({n / load_s:.0f} chunks/s into Redis)", flush=True)  # fmt: skip
        res = await bench_queries(url, f"bench-{n}", emb, args.queries)
        for key in ("hybrid", "vector", "hybrid+embed", "vector+embed"):
            print(f"  {key:14s} p50 {res[key + ' p50']:6.2f} ms   p95 {res[key + ' p95']:6.2f} ms")
    print(f"load average at the end {load_average()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--ingest-sections", type=int, default=200)
    ap.add_argument("--chunk-tokens", type=int, nargs="+", default=[96])
    ap.add_argument("--model", choices=LOCAL_EMBEDDING_MODELS, default=LOCAL_EMBEDDING_MODEL)
    ap.add_argument("--redis-url")
    args = ap.parse_args()
    if args.redis_url:
        asyncio.run(main_async(args.redis_url, args))
    else:
        with RedisSearchServer() as server:
            asyncio.run(main_async(server.url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
