"""Knowledge bases: ingestion (sources → chunks → vectors → Redis) and hybrid retrieval.

The runtime calls :class:`Retriever` at every user turn; ``kubevox-agent ingest`` (run by the
operator's Job) calls :func:`ingest`.
"""

from .embedders import (
    Embedder,
    LocalEmbedder,
    MultilingualEmbedder,
    OpenAIEmbedder,
    StaticEmbedder,
    make_embedder,
)
from .errors import EmbeddingError, KnowledgeError, RetrievalError, SourceError, StoreError
from .ingest import IngestResult, ingest
from .models import Chunk
from .redis_conn import connect
from .retriever import Retriever
from .runtime import build_retriever

__all__ = [
    "Chunk",
    "Embedder",
    "EmbeddingError",
    "IngestResult",
    "KnowledgeError",
    "LocalEmbedder",
    "MultilingualEmbedder",
    "OpenAIEmbedder",
    "RetrievalError",
    "Retriever",
    "SourceError",
    "StaticEmbedder",
    "StoreError",
    "build_retriever",
    "connect",
    "ingest",
    "make_embedder",
]
