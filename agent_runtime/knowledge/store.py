"""The Redis side of a knowledge base: one search index per content version behind an alias.

Keys for alias ``A`` and version ``V`` (12 hex digits of the content hash and a build stamp, so
a rebuild of the same content never touches the live keys):

- index ``A--V`` over hashes ``kv:A:V:<n>`` (text, title, source and document tags, an HNSW
  vector) — agents query the alias ``A``, never a versioned name. Each passage is stemmed in its
  own language (field ``language``, RediSearch's ``LANGUAGE_FIELD``); ``text`` and ``title`` hold
  what RediSearch indexes (``agent_runtime.text.index_text``), and ``raw_text``/``raw_title`` the
  passage as written when that differs (non-ASCII text), which is what agents are given;
- ``kv:A:meta``: the live version's hash, counts, model, documents per language and common
  terms (``terms``), written in the same MULTI as the alias switch so all change
  together;
- ``kv:A:versions``: every version ever started, so leftovers of a crashed or cut-off ingestion
  are found and removed by the next one.
- ``kv:A:owner``: the KnowledgeBase that owns ``A`` (JSON: namespace, name, uid), claimed by
  its first ingestion; another KnowledgeBase naming ``A`` is refused before anything changes.

A new version is built completely and checked before FT.ALIASUPDATE moves the alias in one
step; only then are older versions dropped. Any failure before the switch leaves the live
version untouched and removes the partial one (now if Redis answers, else on the next run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from kubevox_api.languages import DEFAULT_TEXT_LANGUAGE, TextLanguage
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from ..text import index_text
from ..text_languages import SNOWBALL
from .embedders import Vectors
from .errors import StoreError
from .models import ChunkRecord
from .redis_conn import command
from .terms import (
    COMMON_TERM_DOCS,
    common_terms,
    decode_languages,
    encode_common,
    encode_languages,
)

WRITE_BATCH = 256
SCAN_TIMEOUT = 600.0
"""Seconds FT.CREATE's background scan of the keyspace may take (0.3 to 1.4 s per 200k keys
on the 2-core VM under load)."""
RETURN_FIELDS = (
    "text", "source", "title", "document", "position", "chunk_id", "raw_text", "raw_title"
)  # fmt: skip


def key_prefix(alias: str, version: str) -> str:
    return f"kv:{alias}:{version}:"


def index_for(alias: str, version: str) -> str:
    return f"{alias}--{version}"


def meta_key(alias: str) -> str:
    return f"kv:{alias}:meta"


def versions_key(alias: str) -> str:
    return f"kv:{alias}:versions"


def owner_key(alias: str) -> str:
    return f"kv:{alias}:owner"


@dataclass(frozen=True)
class IndexOwner:
    """The KnowledgeBase an index belongs to."""

    namespace: str
    name: str
    uid: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {"namespace": self.namespace, "name": self.name, "uid": self.uid}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str) -> IndexOwner:
        try:
            raw = json.loads(text)
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            return cls("?", text[:64])
        return cls(str(raw.get("namespace", "")), str(raw.get("name", "")), str(raw.get("uid", "")))

    def same(self, other: IndexOwner) -> bool:
        """The same KnowledgeBase: equal uids, or (a uid missing, or a namesake recreated in its
        namespace after the first was deleted) the same namespace and name."""
        return (self.namespace, self.name) == (other.namespace, other.name)


@dataclass(frozen=True)
class LiveVersion:
    index: str
    content_hash: str
    documents: int
    chunks: int
    model_id: str
    indexed_at: float
    languages: dict[TextLanguage, int] = field(default_factory=dict)
    """Documents per language (none recorded by a version built before languages were)."""


def _s(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class KnowledgeStore:
    def __init__(
        self, client: aioredis.Redis, alias: str, common_term_docs: int = COMMON_TERM_DOCS
    ) -> None:
        self.r = client
        self.alias = alias
        self.common_term_docs = common_term_docs

    async def claim(self, owner: IndexOwner) -> IndexOwner | None:
        """Records ``owner`` as the index's owner unless another KnowledgeBase owns it; returns
        that other owner (then nothing may be written, switched or dropped), else None."""
        key = owner_key(self.alias)
        if await self.r.set(key, owner.to_json(), nx=True):
            return None
        current = IndexOwner.from_json(_s(await self.r.get(key)))
        if not current.same(owner):
            return current
        if current.uid != owner.uid and owner.uid:
            await self.r.set(key, owner.to_json())  # the namesake's new uid
        return None

    async def live(self) -> LiveVersion | None:
        """The version the alias serves, or None if there is none (or it is incomplete)."""
        raw = await self.r.hgetall(meta_key(self.alias))
        if not raw:
            return None
        meta = {_s(k): _s(v) for k, v in raw.items()}
        try:
            info = await command(self.r, "FT.INFO", self.alias)
        except ResponseError:
            return None  # meta without a live alias: treat as never indexed
        fields = dict(zip(info[::2], info[1::2], strict=False))
        if _s(fields.get(b"index_name")) != meta.get("index"):
            return None
        return LiveVersion(
            index=meta["index"],
            content_hash=meta.get("content_hash", ""),
            documents=int(meta.get("documents", 0)),
            chunks=int(meta.get("chunks", 0)),
            model_id=meta.get("model_id", ""),
            indexed_at=float(meta.get("indexed_at", 0)),
            languages=decode_languages(meta.get("languages")),
        )

    async def stale_versions(self, keep: str | None) -> list[str]:
        members = await self.r.smembers(versions_key(self.alias))
        return sorted(_s(m) for m in members if _s(m) != keep)

    async def drop_version(self, version: str) -> None:
        """Remove a version's index and keys. UNLINK in batches so Redis never blocks long."""
        with contextlib.suppress(ResponseError):  # already gone
            await command(self.r, "FT.DROPINDEX", index_for(self.alias, version))
        prefix = key_prefix(self.alias, version)
        async for batch in _scan_batches(self.r, f"{prefix}*"):
            await self.r.unlink(*batch)
        await self.r.srem(versions_key(self.alias), version)

    async def build(
        self,
        version: str,
        content_hash: str,
        chunks: Sequence[ChunkRecord],
        vectors: Vectors,
        documents: int,
        model_id: str,
    ) -> str:
        """Write a complete new version, switch the alias to it, drop older ones.

        Returns the new index name. On failure the alias is untouched and the partial version
        removed (or left registered for the next run to remove, if Redis is gone).
        """
        index = index_for(self.alias, version)
        prefix = key_prefix(self.alias, version)
        live = await self.live()
        common = encode_common(
            common_terms(((c.text, c.language) for c in chunks), self.common_term_docs)
        )
        languages = encode_languages(
            Counter(lang for _, _, lang in {(c.source, c.document, c.language) for c in chunks})
        )
        try:
            await self.r.sadd(versions_key(self.alias), version)
            await self._create_index(index, prefix, vectors.shape[1])
            await self._scanned(index)
            await self._write(prefix, chunks, vectors)
            await self._verify(index, len(chunks))
            tx = self.r.pipeline(transaction=True)
            tx.execute_command("FT.ALIASUPDATE", self.alias, index)
            tx.delete(meta_key(self.alias))
            tx.hset(
                meta_key(self.alias),
                mapping={
                    "index": index,
                    "version": version,
                    "content_hash": content_hash,
                    "documents": documents,
                    "chunks": len(chunks),
                    "model_id": model_id,
                    "dimensions": int(vectors.shape[1]),
                    "indexed_at": f"{time.time():.3f}",
                    "common_terms": common,
                    "languages": languages,
                },
            )
            await tx.execute()
        except (RedisError, OSError, StoreError) as exc:
            await self._abandon(version)
            if isinstance(exc, StoreError):
                raise
            live_note = f"; {live.index} stays live" if live else ""
            raise StoreError(f"Redis failed while writing {index}: {exc}{live_note}") from exc
        except BaseException:
            await asyncio.shield(self._abandon(version))
            raise
        await self.drop_stale(keep=version)
        return index

    async def drop_stale(self, keep: str | None) -> list[str]:
        dropped = []
        for old in await self.stale_versions(keep):
            await self.drop_version(old)
            dropped.append(old)
        return dropped

    async def _abandon(self, version: str) -> None:
        # If Redis is gone the version stays registered in kv:A:versions: the next run drops it.
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self.drop_version(version), timeout=10)

    async def _create_index(self, index: str, prefix: str, dims: int) -> None:
        await command(
            self.r,
            "FT.CREATE", index, "ON", "HASH", "PREFIX", "1", prefix,
            "LANGUAGE", SNOWBALL[DEFAULT_TEXT_LANGUAGE], "LANGUAGE_FIELD", "language",
            "SCHEMA",
            "text", "TEXT",
            "title", "TEXT", "WEIGHT", "2",
            "source", "TAG",
            "document", "TAG",
            "vector", "VECTOR", "HNSW", "10",
            "TYPE", "FLOAT32", "DIM", str(dims), "DISTANCE_METRIC", "COSINE",
            "M", "16", "EF_CONSTRUCTION", "200",
        )  # fmt: skip

    async def _scanned(self, index: str) -> None:
        """Wait for the keyspace scan FT.CREATE starts in the background. A hash written while
        it runs is indexed twice (when written, and again as an update when the scan reaches
        it), so the index counts its words twice and BM25's document lengths and frequencies
        are off until RediSearch's garbage collector catches up: full-text ranking of a fresh
        version was wrong in Redis holding other keys (an earlier version's, for one). The
        version's prefix is new, so the scan finds nothing; it only has to end."""
        try:
            async with asyncio.timeout(SCAN_TIMEOUT):
                while True:
                    info = await command(self.r, "FT.INFO", index)
                    fields = dict(zip(info[::2], info[1::2], strict=False))
                    indexing = fields.get(b"indexing", 0)  # an integer, 1 while scanning
                    if not float(_s(indexing) if isinstance(indexing, bytes) else indexing):
                        return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise StoreError(
                f"index {index}: Redis still scans its keys after {SCAN_TIMEOUT:.0f}s"
            ) from None

    async def _write(self, prefix: str, chunks: Sequence[ChunkRecord], vectors: Vectors) -> None:
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        for start in range(0, len(chunks), WRITE_BATCH):
            pipe = self.r.pipeline(transaction=False)
            for i in range(start, min(start + WRITE_BATCH, len(chunks))):
                pipe.hset(f"{prefix}{i}", mapping=_fields(chunks[i], vecs[i]))
            await pipe.execute()

    async def _verify(self, index: str, expected: int) -> None:
        # Hashes written after FT.CREATE are indexed synchronously; this guards against a
        # version that silently lost documents (e.g. a key evicted under maxmemory).
        info = await command(self.r, "FT.INFO", index)
        fields = dict(zip(info[::2], info[1::2], strict=False))
        got = int(float(_s(fields.get(b"num_docs", b"0"))))
        if got != expected:
            raise StoreError(f"index {index} holds {got} of {expected} chunks; not switching")


def _fields(c: ChunkRecord, vector: np.ndarray[Any, Any]) -> dict[FieldT, EncodableT]:
    """A passage's hash: what RediSearch indexes, and as written where that differs."""
    text, title = index_text(c.text, c.language), index_text(c.title, c.language)
    out: dict[FieldT, EncodableT] = {
        "text": text,
        "title": title,
        "source": c.source,
        "document": c.document,
        "position": c.position,
        "chunk_id": c.chunk_id,
        "language": SNOWBALL[c.language],
        "vector": vector.tobytes(),
    }
    if text != c.text:
        out["raw_text"] = c.text
    if title != c.title:
        out["raw_title"] = c.title
    return out


async def _scan_batches(
    client: aioredis.Redis, pattern: str, count: int = 1000
) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=count):
        batch.append(key)
        if len(batch) >= count:
            yield batch
            batch = []
    if batch:
        yield batch
