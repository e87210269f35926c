"""Errors of ingestion and retrieval; each names what failed so status and logs can say it."""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base class of knowledge-base errors."""


class SourceError(KnowledgeError):
    """One source could not be read or turned into text."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"source {source!r}: {message}")
        self.source = source
        self.message = message


class StoreError(KnowledgeError):
    """Redis failed or refused; the live index is left as it was."""


class EmbeddingError(KnowledgeError):
    """The embedding model failed."""


class RetrievalError(KnowledgeError):
    """A query could not be answered (Redis unreachable, index missing)."""
