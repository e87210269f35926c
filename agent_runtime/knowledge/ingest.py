"""Ingestion: sources → text → chunks → vectors → a new index version behind the alias.

Every source is read before anything is written, and any bad source fails the run (unless
partial ingestion is allowed): indexing the rest would silently drop the bad source's
documents from what agents can answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from kubevox_operator.api import KnowledgeBase
from redis.exceptions import RedisError

from .chunking import ChunkingOptions, chunk_document
from .embedders import Embedder
from .errors import EmbeddingError, SourceError, StoreError
from .extract import extract
from .models import ChunkRecord, Document
from .sources import SourceLimits, resolve, source_name
from .store import KnowledgeStore, LiveVersion


@dataclass
class SourceFailure:
    source: str
    message: str


@dataclass
class IngestResult:
    """What the operator copies into the KnowledgeBase status (``to_status``)."""

    ok: bool
    changed: bool
    index_name: str
    message: str = ""
    active_index: str | None = None
    content_hash: str | None = None
    documents: int = 0
    chunks: int = 0
    duration_seconds: float = 0.0
    embedding_seconds: float = 0.0
    last_indexed_time: str | None = None
    source_errors: list[SourceFailure] = field(default_factory=list)

    def to_status(self) -> dict[str, Any]:
        """camelCase, as in KnowledgeBaseStatus; counts and hash describe the live version."""
        raw = asdict(self)
        out = {_camel(k): v for k, v in raw.items() if v is not None}
        out["sourceErrors"] = [asdict(e) for e in self.source_errors]
        return out

    def to_json(self, max_bytes: int | None = None) -> str:
        status = self.to_status()
        text = json.dumps(status, separators=(",", ":"))
        # /dev/termination-log keeps 4096 bytes: shorten messages rather than cut the JSON.
        while max_bytes is not None and len(text.encode()) > max_bytes and status["sourceErrors"]:
            errs = status["sourceErrors"]
            longest = max(errs, key=lambda e: len(e["message"]))
            if len(longest["message"]) > 80:
                longest["message"] = longest["message"][: len(longest["message"]) // 2] + "…"
            else:
                errs.pop()
            text = json.dumps(status, separators=(",", ":"))
        return text


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def content_hash(chunks: list[ChunkRecord], model_id: str, opts: ChunkingOptions) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([model_id, opts.size_tokens, opts.overlap_tokens]).encode())
    for c in chunks:
        h.update(b"\x1e" + "\x1f".join((c.source, c.document, c.title, c.text)).encode())
    return h.hexdigest()


async def read_documents(
    kb: KnowledgeBase, sources_dir: Path | None
) -> tuple[list[Document], list[SourceFailure]]:
    """Every document of every source, and one failure per bad source or document."""
    limits = SourceLimits(
        max_bytes=kb.spec.limits.max_source_bytes,
        fetch_timeout=float(kb.spec.limits.fetch_timeout_seconds),
    )
    names = [source_name(s, i) for i, s in enumerate(kb.spec.sources)]
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(
            *(
                resolve(s, n, sources_dir, limits, session)
                for s, n in zip(kb.spec.sources, names, strict=True)
            ),
            return_exceptions=True,
        )
    docs: list[Document] = []
    failures: list[SourceFailure] = []
    for name, res in zip(names, results, strict=True):
        if isinstance(res, SourceError):
            failures.append(SourceFailure(res.source, res.message))
            continue
        if isinstance(res, BaseException):
            failures.append(SourceFailure(name, f"could not be read: {res!r}"))
            continue
        for raw in res:
            try:
                docs.append(extract(raw))
            except SourceError as exc:
                failures.append(SourceFailure(exc.source, exc.message))
    return docs, failures


async def ingest(
    kb: KnowledgeBase,
    client: aioredis.Redis,
    embedder: Embedder,
    *,
    sources_dir: Path | None = None,
    allow_partial: bool = False,
) -> IngestResult:
    started = time.monotonic()
    store = KnowledgeStore(client, kb.index_name)
    result = IngestResult(ok=False, changed=False, index_name=kb.index_name)

    def done(message: str, live: LiveVersion | None) -> IngestResult:
        result.message = message
        result.duration_seconds = round(time.monotonic() - started, 3)
        if live is not None:
            result.active_index = live.index
            result.content_hash = live.content_hash
            result.documents, result.chunks = live.documents, live.chunks
            result.last_indexed_time = datetime.fromtimestamp(live.indexed_at, UTC).isoformat()
        return result

    docs, failures = await read_documents(kb, sources_dir)
    result.source_errors = failures
    try:
        live = await store.live()
    except RedisError as exc:
        return done(f"Redis unreachable: {exc}", None)
    if failures and not allow_partial:
        return done(_failed_sources(failures, live), live)

    opts = ChunkingOptions(kb.spec.chunking.size_tokens, kb.spec.chunking.overlap_tokens)
    chunks = [c for d in docs for c in chunk_document(d, opts)]
    if not chunks:
        return done("no source produced any text to index", live)
    digest = content_hash(chunks, embedder.model_id, opts)

    try:
        if live is not None and live.content_hash == digest:
            await store.drop_stale(keep=live.index.rsplit("--", 1)[-1])  # writes only if any
            result.ok = True
            return done(f"unchanged: {live.index} is current", live)
        t0 = time.monotonic()
        vectors = await embedder.embed_documents([c.text for c in chunks])
        result.embedding_seconds = round(time.monotonic() - t0, 3)
        version = f"{digest[:12]}-{int(time.time() * 1000) % 10**10:010d}"
        await store.build(version, digest, chunks, vectors, len(docs), embedder.model_id)
        new_live = await store.live()
    except (StoreError, EmbeddingError) as exc:
        return done(str(exc), live)
    except RedisError as exc:
        return done(f"Redis failed: {exc}", live)
    result.ok = result.changed = True
    return done(f"indexed {len(chunks)} chunks from {len(docs)} documents", new_live)


def _failed_sources(failures: list[SourceFailure], live: LiveVersion | None) -> str:
    names = ", ".join(sorted({f.source.split("/")[0] for f in failures}))
    keep = f"; {live.index} stays live" if live else "; nothing indexed"
    return f"{len(failures)} source error(s) ({names}){keep}"
