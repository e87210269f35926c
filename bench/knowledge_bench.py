"""Knowledge-base benchmark: ingestion throughput and query latency at 10k and 100k chunks.

    python bench/knowledge_bench.py [--sizes 10000 100000] [--queries 300] [--ingest-chunks 512]

Ingestion: the real pipeline (chunking, local embedder, Redis writes, alias switch) over
generated hotel-FAQ text. Query latency: chunk texts are generated from a word list and their
vectors are SYNTHESIZED (random unit vectors), because embedding 100k chunks with the local
model would take hours on 2 cores; Redis does the same HNSW and BM25 work either way. Queries are
the evaluation questions; "with embedding" includes running the local model on the question
(never cached).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "operator", ROOT / "hack" / "devenv"):
    sys.path.insert(0, str(extra))

from kubevox_devenv.redis import RedisSearchServer  # noqa: E402
from kubevox_operator.api import KnowledgeBase  # noqa: E402

from agent_runtime.knowledge import LocalEmbedder, Retriever, connect, ingest  # noqa: E402
from agent_runtime.knowledge.evaluation import load_questions  # noqa: E402
from agent_runtime.knowledge.models import ChunkRecord  # noqa: E402
from agent_runtime.knowledge.store import KnowledgeStore  # noqa: E402

EVAL = ROOT / "tests" / "knowledge" / "eval"


def words() -> list[str]:
    text = " ".join(p.read_text() for p in (EVAL / "docs").iterdir())
    return sorted({w.lower().strip(".,:;()\"'") for w in text.split() if w.isascii()} - {""})


def faq_text(n_sections: int, rng: random.Random, vocab: list[str]) -> str:
    parts = []
    for i in range(n_sections):
        body = " ".join(rng.choice(vocab) for _ in range(60))
        parts.append(f"## Topic {i}\n\n{body.capitalize()}.")
    return "# Generated handbook\n\n" + "\n\n".join(parts)


async def bench_ingest(url: str, emb: LocalEmbedder, sections: int) -> dict[str, float]:
    rng = random.Random(7)
    kb = KnowledgeBase.model_validate({"metadata": {"name": "bench-ingest"}, "spec": {
        "sources": [{"name": "handbook", "inline": faq_text(sections, rng, words())}],
        "chunking": {"sizeTokens": 96, "overlapTokens": 16},
        "store": {"redisUrlSecretRef": {"name": "r", "key": "url"}, "indexName": "bench-ingest"},
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


async def load_synthetic(url: str, alias: str, n: int, vocab: list[str]) -> float:
    rng = random.Random(n)
    gen = np.random.default_rng(n)
    client = connect(url, socket_timeout=120)
    store = KnowledgeStore(client, alias)
    chunks = [
        ChunkRecord(" ".join(rng.choice(vocab) for _ in range(50)), f"src{i % 20}", f"doc{i % 500}",
                    "Generated", i)
        for i in range(n)
    ]  # fmt: skip
    vecs = gen.standard_normal((n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    t0 = time.perf_counter()
    await store.build(f"synthetic{n}", f"synthetic{n}", chunks, vecs, 500, "synthetic")
    await client.aclose()
    return time.perf_counter() - t0


def pct(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1] * 1000


async def bench_queries(url: str, alias: str, emb: LocalEmbedder, n: int) -> dict[str, float]:
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


async def main_async(url: str, args: argparse.Namespace) -> None:
    emb = LocalEmbedder()
    emb.encode(["warm up"])
    ing = await bench_ingest(url, emb, args.ingest_sections)
    print(f"ingestion: {ing['chunks']} chunks of <=96 tokens in {ing['seconds']:.2f}s = "
          f"{ing['chunks_per_s']:.1f} chunks/s (embedding {ing['embed_seconds']:.2f}s; "
          f"everything but embedding {ing['store_chunks_per_s']:.0f} chunks/s)",
          flush=True)  # fmt: skip
    vocab = words()
    for n in args.sizes:
        load = await load_synthetic(url, f"bench-{n}", n, vocab)
        print(f"\nstore of {n} chunks (synthetic vectors) loaded in {load:.1f}s "
              f"({n / load:.0f} chunks/s into Redis)", flush=True)  # fmt: skip
        res = await bench_queries(url, f"bench-{n}", emb, args.queries)
        for key in ("hybrid", "vector", "hybrid+embed", "vector+embed"):
            print(f"  {key:14s} p50 {res[key + ' p50']:6.2f} ms   p95 {res[key + ' p95']:6.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--ingest-sections", type=int, default=200)
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
