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
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from kubevox_api import KnowledgeBase, Source
from kubevox_api.contract import KNOWLEDGE_INDEX_FORMAT
from kubevox_api.languages import AUTO_LANGUAGE, DEFAULT_TEXT_LANGUAGE, TextLanguage
from redis.exceptions import RedisError

from ..text import detect_language
from .chunking import ChunkingOptions, chunk_document
from .embedders import Embedder
from .errors import EmbeddingError, SourceError, StoreError
from .extract import extract
from .models import ChunkRecord, Document, RawDocument
from .netguard import AddressPolicy
from .sources import ByteBudget, SourceLimits, guarded_session, resolve, source_name
from .store import IndexOwner, KnowledgeStore, LiveVersion

MAX_CHUNKS_PER_DOCUMENT = 50_000
"""About 50 MB of text at the default passage size: beyond what one document should be."""
MAX_CHUNKS = 200_000
"""All passages of one knowledge base: their text and vectors must fit the Job's memory."""


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
    reason: str | None = None
    """Why it failed, when the status should say more than IngestionFailed."""
    active_index: str | None = None
    content_hash: str | None = None
    documents: int = 0
    chunks: int = 0
    duration_seconds: float = 0.0
    embedding_seconds: float = 0.0
    last_indexed_time: str | None = None
    source_errors: list[SourceFailure] = field(default_factory=list)
    languages: dict[TextLanguage, int] = field(default_factory=dict)
    """Documents per language in the live version."""

    def to_status(self) -> dict[str, Any]:
        """camelCase, as in KnowledgeBaseStatus; counts and hash describe the live version."""
        raw = asdict(self)
        out = {_camel(k): v for k, v in raw.items() if v is not None}
        out["sourceErrors"] = [asdict(e) for e in self.source_errors]
        out["languages"] = [
            {"language": lang, "documents": n} for lang, n in self.languages.items()
        ]
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
    header = [KNOWLEDGE_INDEX_FORMAT, model_id, opts.size_tokens, opts.overlap_tokens]
    h.update(json.dumps(header).encode())
    for c in chunks:
        fields = (c.source, c.document, c.title, c.text, c.language)
        h.update(b"\x1e" + "\x1f".join(fields).encode())
    return h.hexdigest()


def with_languages(kb: KnowledgeBase, docs: list[Document]) -> list[Document]:
    """Each document with its language: its source's ``language``, else the KnowledgeBase's;
    ``auto`` detects it from the document's text (English when the text does not tell)."""
    names = [source_name(s, i) for i, s in enumerate(kb.spec.sources)]
    declared = {
        name: s.language or kb.spec.language for name, s in zip(names, kb.spec.sources, strict=True)
    }
    out = []
    for doc in docs:
        language = declared.get(doc.source, kb.spec.language)
        found: TextLanguage = (
            (detect_language(doc.text) or DEFAULT_TEXT_LANGUAGE)
            if language == AUTO_LANGUAGE
            else language
        )
        out.append(doc if doc.language == found else replace(doc, language=found))
    return out


async def read_documents(
    kb: KnowledgeBase,
    sources_dir: Path | None,
    policy: AddressPolicy | None = None,
    max_total_bytes: int = SourceLimits.max_total_bytes,
) -> tuple[list[Document], list[SourceFailure]]:
    """Every document of every source, and one failure per bad source or document."""
    limits = SourceLimits(
        max_bytes=kb.spec.limits.max_source_bytes,
        fetch_timeout=float(kb.spec.limits.fetch_timeout_seconds),
        policy=policy or AddressPolicy(),
        max_total_bytes=max_total_bytes,
    )
    names = [source_name(s, i) for i, s in enumerate(kb.spec.sources)]
    budget = ByteBudget(limits.max_total_bytes)
    gate = asyncio.Semaphore(limits.concurrency)

    async def one(source: Source, name: str) -> list[Document] | SourceFailure:
        async with gate:
            try:
                raws = await resolve(source, name, sources_dir, limits, session, budget)
            except SourceError as exc:
                return SourceFailure(exc.source, exc.message)
        return [d for raw in raws if (d := _extract_one(raw, failures)) is not None]

    failures: list[SourceFailure] = []
    async with guarded_session(limits.policy) as session:
        results = await asyncio.gather(
            *(one(s, n) for s, n in zip(kb.spec.sources, names, strict=True)),
            return_exceptions=True,
        )
    docs: list[Document] = []
    for name, res in zip(names, results, strict=True):
        if isinstance(res, SourceFailure):
            failures.append(res)
        elif isinstance(res, BaseException):
            failures.append(SourceFailure(name, f"could not be read: {type(res).__name__}"))
        else:
            docs.extend(res)
    return docs, failures


def _extract_one(raw: RawDocument, failures: list[SourceFailure]) -> Document | None:
    """Text of one document; any failure of a parser on hostile input is that document's error,
    never the whole ingestion's."""
    where = raw.source if raw.name == raw.source else f"{raw.source}/{raw.name}"
    try:
        return extract(raw)
    except SourceError as exc:
        failures.append(SourceFailure(exc.source, exc.message))
    except (RecursionError, MemoryError) as exc:
        failures.append(
            SourceFailure(where, f"is too deeply nested or too large to read ({exc!r})")
        )
    except Exception as exc:  # a parser's bug on odd input must not take the other sources down
        failures.append(
            SourceFailure(where, f"could not be read: {type(exc).__name__}: {exc}"[:500])
        )
    return None


def _chunks(
    docs: list[Document], opts: ChunkingOptions, failures: list[SourceFailure]
) -> list[ChunkRecord]:
    """Passages of every document; a document with more than MAX_CHUNKS_PER_DOCUMENT is an error
    of its source, and the whole knowledge base stops at MAX_CHUNKS (memory and Redis)."""
    out: list[ChunkRecord] = []
    for doc in docs:
        where = doc.source if doc.name == doc.source else f"{doc.source}/{doc.name}"
        chunks = chunk_document(doc, opts, limit=MAX_CHUNKS_PER_DOCUMENT + 1)
        if len(chunks) > MAX_CHUNKS_PER_DOCUMENT:
            failures.append(
                SourceFailure(
                    where,
                    f"makes more than {MAX_CHUNKS_PER_DOCUMENT} passages; split it or use "
                    "larger chunking.sizeTokens",
                )
            )
            continue
        if len(out) + len(chunks) > MAX_CHUNKS:
            failures.append(
                SourceFailure(where, f"takes the knowledge base over {MAX_CHUNKS} passages")
            )
            continue
        out.extend(chunks)
    return out


async def ingest(
    kb: KnowledgeBase,
    client: aioredis.Redis,
    embedder: Embedder,
    *,
    sources_dir: Path | None = None,
    allow_partial: bool = False,
    policy: AddressPolicy | None = None,
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
            result.languages = dict(live.languages)
            result.last_indexed_time = datetime.fromtimestamp(live.indexed_at, UTC).isoformat()
        return result

    try:
        other = await store.claim(index_owner(kb))
    except RedisError as exc:
        return done(f"Redis unreachable: {exc}", None)
    if other is not None:
        # Not even its status is read: the owner's callers hear the owner's content only.
        result.reason = "IndexOwnedByOther"
        return done(
            f"index {kb.index_name} belongs to KnowledgeBase {other.namespace}/{other.name}; "
            "nothing was changed: choose another store.indexName (or leave it unset)",
            None,
        )
    docs, failures = await read_documents(kb, sources_dir, policy)
    docs = with_languages(kb, docs)
    opts = ChunkingOptions(kb.spec.chunking.size_tokens, kb.spec.chunking.overlap_tokens)
    chunks = _chunks(docs, opts, failures)
    result.source_errors = failures
    try:
        live = await store.live()
    except RedisError as exc:
        return done(f"Redis unreachable: {exc}", None)
    if failures and not allow_partial:
        return done(_failed_sources(failures, live), live)

    if not chunks:
        return done("no source produced any text to index", live)
    digest = content_hash(chunks, embedder.model_id, opts)
    n_docs = len({(c.source, c.document) for c in chunks})

    try:
        if live is not None and live.content_hash == digest:
            await store.drop_stale(keep=live.index.rsplit("--", 1)[-1])  # writes only if any
            result.ok = True
            return done(f"unchanged: {live.index} is current", live)
        t0 = time.monotonic()
        vectors = await embedder.embed_documents([c.text for c in chunks])
        result.embedding_seconds = round(time.monotonic() - t0, 3)
        version = f"{digest[:12]}-{int(time.time() * 1000) % 10**10:010d}"
        await store.build(version, digest, chunks, vectors, n_docs, embedder.model_id)
        new_live = await store.live()
    except (StoreError, EmbeddingError) as exc:
        return done(str(exc), live)
    except RedisError as exc:
        return done(f"Redis failed: {exc}", live)
    result.ok = result.changed = True
    return done(f"indexed {len(chunks)} chunks from {n_docs} documents", new_live)


def index_owner(kb: KnowledgeBase) -> IndexOwner:
    meta = kb.metadata
    return IndexOwner(
        str(meta.get("namespace") or "default"), str(meta.get("name", "")), str(meta.get("uid", ""))
    )


def _failed_sources(failures: list[SourceFailure], live: LiveVersion | None) -> str:
    names = ", ".join(sorted({f.source.split("/")[0] for f in failures}))
    keep = f"; {live.index} stays live" if live else "; nothing indexed"
    return f"{len(failures)} source error(s) ({names}){keep}"
