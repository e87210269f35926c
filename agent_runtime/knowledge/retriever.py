"""Hybrid retrieval at every user turn: BM25 full text and vector KNN, fused by reciprocal rank.

Both searches go to Redis in one MULTI/EXEC: one round trip, and both see the same index
version even while an ingestion switches the alias. The query is embedded once, before. The
same transaction reads the live version's id; when it changes, the retriever fetches that
version's common terms and languages (``terms``) once, for the next queries.

The full-text half searches the question in its language (``terms.query_languages``): with
that language's stop words left out and its stemmer (``FT.SEARCH ... LANGUAGE``), so a French
question matches the stems of French passages. When the question's language cannot be told
among several, it is searched in each (one more search per language, in the same round trip)
and each passage keeps its best score.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import redis.asyncio as aioredis
from kubevox_api.languages import TextLanguage
from redis.exceptions import RedisError, ResponseError

from ..text_languages import SNOWBALL
from .embedders import Embedder, Vectors
from .errors import RetrievalError
from .models import Chunk
from .redis_conn import connect
from .store import RETURN_FIELDS, meta_key
from .terms import (
    decode_common,
    decode_languages,
    present_languages,
    query_languages,
    text_query,
)

Mode = Literal["hybrid", "vector", "text"]
log = logging.getLogger("kubevox.knowledge")

RRF_K = 60


def _tag_filter(sources: Iterable[str] | None) -> str:
    if not sources:
        return ""
    escaped = [re.sub(r"([^A-Za-z0-9_])", r"\\\1", s) for s in sources]
    return f"@source:{{{'|'.join(escaped)}}}"


@dataclass
class _Hit:
    fields: dict[str, str]
    vector: bytes | None
    text_rank: int | None = None
    text_score: float | None = None
    vector_rank: int | None = None
    similarity: float | None = None


class Retriever:
    """Queries one knowledge base (its alias) with a shared, pooled Redis client."""

    def __init__(
        self,
        client: aioredis.Redis,
        index_name: str,
        embedder: Embedder | None,
        *,
        default_top_k: int = 4,
        default_min_score: float = 0.0,
        language: TextLanguage | None = None,
    ) -> None:
        self.r = client
        self.index = index_name
        self.embedder = embedder
        self.default_top_k = default_top_k
        self.default_min_score = default_min_score
        self.language = language
        """The language callers are expected to ask in (the agent's): a question in a knowledge
        base of several languages is searched in it when its own words do not tell."""
        self._loaded = False
        self._version: bytes | str | None = None
        self._common: dict[str, int] = {}
        self._languages: list[TextLanguage] = present_languages({})

    @classmethod
    def from_url(
        cls, url: str, index_name: str, embedder: Embedder | None, **kw: float | int | str | None
    ) -> Retriever:
        # Tight timeouts: a turn must not hang on a dead Redis; the pool reconnects on its own.
        client = connect(url, socket_timeout=2.0, connect_timeout=1.0, retries=2)
        return cls(client, index_name, embedder, **kw)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self.r.aclose()

    async def retrieve(
        self,
        query: str,
        top_k: int | None = None,
        *,
        min_score: float | None = None,
        sources: Sequence[str] | None = None,
        mode: Mode = "hybrid",
        query_vector: Vectors | None = None,
        languages: Sequence[TextLanguage] | None = None,
    ) -> list[Chunk]:
        """The ``top_k`` best chunks for ``query``.

        ``min_score`` is the minimum cosine similarity between query and chunk (0 to 1); it is
        ignored in text-only mode. ``sources`` keeps only chunks of those source names.
        ``query_vector`` skips the embedding (a caller that already has it). ``languages``: the
        full-text languages to search in (default: see ``terms.query_languages``).
        """
        k = top_k or self.default_top_k
        floor = self.default_min_score if min_score is None else min_score
        depth = max(3 * k, 20)
        vec = query_vector
        if vec is None and mode != "text":
            if self.embedder is None:
                raise RetrievalError("vector retrieval needs an embedder")
            vec = await self.embedder.embed_query(query)
        if mode != "vector" and not self._loaded:
            try:
                await self._load_meta()  # its languages decide the query (once per retriever)
            except (RedisError, OSError) as exc:
                raise RetrievalError(f"Redis unreachable for {self.index!r}: {exc}") from exc
        if languages is None:
            languages = query_languages(query, self._languages, self.language)
        hits = await self._search(query, vec, depth, sources, mode, languages)
        return self._fuse(hits, k, floor if vec is not None and mode != "text" else 0.0, mode)

    async def _search(
        self,
        query: str,
        vec: Vectors | None,
        depth: int,
        sources: Sequence[str] | None,
        mode: Mode,
        languages: Sequence[TextLanguage],
    ) -> dict[str, _Hit]:
        tags = _tag_filter(sources)
        ret = [*RETURN_FIELDS, "vector"]
        pipe = self.r.pipeline(transaction=True)
        text_qs = [
            (q, lang)
            for lang in (languages if mode != "vector" else ())
            if (q := text_query(query, self._common, lang)) is not None
        ]
        for text_q, lang in text_qs:
            q = f"@text:({text_q}) {tags}".strip()
            pipe.execute_command(
                "FT.SEARCH", self.index, q, "LANGUAGE", SNOWBALL[lang],
                "SCORER", "BM25STD", "WITHSCORES",
                "RETURN", str(len(ret)), *ret, "LIMIT", "0", str(depth), "DIALECT", "2",
            )  # fmt: skip
        if vec is not None and mode != "text":
            blob = np.asarray(vec, dtype=np.float32).tobytes()
            knn = f"({tags})" if tags else "*"
            pipe.execute_command(
                "FT.SEARCH", self.index, f"{knn}=>[KNN {depth} @vector $v AS dist]",
                "PARAMS", "2", "v", blob, "SORTBY", "dist",
                "RETURN", str(len(RETURN_FIELDS) + 1), *RETURN_FIELDS, "dist",
                "LIMIT", "0", str(depth), "DIALECT", "2",
            )  # fmt: skip
        if not len(pipe):
            return {}
        pipe.hget(meta_key(self.index), "version")
        try:
            *replies, version = await pipe.execute()
            if version != self._version:
                await self._load_meta()
        except ResponseError as exc:
            if "no such index" in str(exc).lower():
                raise RetrievalError(f"knowledge base index {self.index!r} does not exist") from exc
            raise RetrievalError(f"search on {self.index!r} failed: {exc}") from exc
        except (RedisError, OSError) as exc:
            raise RetrievalError(f"Redis unreachable for {self.index!r}: {exc}") from exc
        hits: dict[str, _Hit] = {}
        reply_iter = iter(replies)
        if text_qs:
            ranked = _best_of([_parse(next(reply_iter), True) for _ in text_qs])
            for rank, (fields, score, vector) in enumerate(ranked[:depth]):
                hit = hits.setdefault(fields["chunk_id"], _Hit(fields, vector))
                hit.text_rank, hit.text_score = rank, score
                if vec is not None and vector:
                    hit.similarity = float(np.frombuffer(vector, np.float32) @ vec)
        if vec is not None and mode != "text":
            for rank, (fields, _, _) in enumerate(_parse(next(reply_iter), False)):
                hit = hits.setdefault(fields["chunk_id"], _Hit(fields, None))
                hit.vector_rank = rank
                hit.similarity = 1.0 - float(fields.get("dist", "1"))
        return hits

    async def warm(self) -> None:
        """Connect and learn the live version's common terms and languages before the first
        question (a call's retriever is new; its first query would otherwise wait for them)."""
        try:
            await self._load_meta()
        except (RedisError, OSError) as exc:
            log.info("knowledge base %s not reachable yet: %s", self.index, exc)

    async def _load_meta(self) -> None:
        raw = await self.r.hmget(meta_key(self.index), ["version", "common_terms", "languages"])
        # Keyed by the version read with them: a switch in between is caught next time.
        self._version, self._common = raw[0], decode_common(raw[1])
        self._languages = present_languages(decode_languages(raw[2]))
        self._loaded = True

    @staticmethod
    def _fuse(hits: dict[str, _Hit], k: int, floor: float, mode: Mode) -> list[Chunk]:
        best = 2.0 / (RRF_K + 1)
        scored = []
        for cid, h in hits.items():
            if floor > 0 and (h.similarity is None or h.similarity < floor):
                continue
            rrf = sum(1.0 / (RRF_K + 1 + r) for r in (h.text_rank, h.vector_rank) if r is not None)
            if mode == "text":
                h.similarity = None  # a text-only ranking reports no vector score
            scored.append((rrf / best, cid, h))
        scored.sort(key=lambda t: (-t[0], -(t[2].similarity or 0.0)))
        out = []
        for rrf, cid, h in scored[:k]:
            f = h.fields
            score = rrf if h.similarity is None else max(0.0, h.similarity)
            out.append(
                Chunk(
                    text=f.get("text", ""),
                    source=f.get("source", ""),
                    title=f.get("title", ""),
                    score=round(score, 6),
                    document=f.get("document", ""),
                    position=int(f.get("position", "0") or 0),
                    chunk_id=cid,
                    rrf_score=round(rrf, 6),
                    text_score=h.text_score,
                )
            )
        return out


_Parsed = tuple[dict[str, str], float | None, bytes | None]


def _best_of(replies: list[list[_Parsed]]) -> list[_Parsed]:
    """One ranking from the full-text searches of several languages: each passage at its best
    score. One search's ranking is kept as it is (its ties in Redis' order)."""
    if len(replies) == 1:
        return replies[0]
    best: dict[str, _Parsed] = {}
    for reply in replies:
        for hit in reply:
            cid = hit[0]["chunk_id"]
            if cid not in best or (hit[1] or 0.0) > (best[cid][1] or 0.0):
                best[cid] = hit
    return sorted(best.values(), key=lambda hit: -(hit[1] or 0.0))


def _parse(reply: list[object], with_scores: bool) -> list[_Parsed]:
    """RESP2 FT.SEARCH reply → (fields, score, raw vector) per document, in rank order."""
    out = []
    step = 3 if with_scores else 2
    body = reply[1:]
    for i in range(0, len(body) - step + 1, step):
        score = float(body[i + 1]) if with_scores else None  # type: ignore[arg-type]
        raw = body[i + step - 1]
        pairs = list(raw) if isinstance(raw, list) else []
        fields: dict[str, str] = {}
        vector: bytes | None = None
        for name, value in zip(pairs[::2], pairs[1::2], strict=False):
            key = name.decode() if isinstance(name, bytes) else str(name)
            if key == "vector":
                vector = value if isinstance(value, bytes) else None
            else:
                fields[key] = (
                    value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                )
        # Non-ASCII text is indexed normalised; the passage as written is given back.
        for name in ("text", "title"):
            if f"raw_{name}" in fields:
                fields[name] = fields.pop(f"raw_{name}")
        doc_id = body[i]
        fields.setdefault("chunk_id", doc_id.decode() if isinstance(doc_id, bytes) else str(doc_id))
        out.append((fields, score, vector))
    return out
