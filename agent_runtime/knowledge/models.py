"""Plain data passed between the stages: document → sections → chunks → retrieved chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from kubevox_api.languages import DEFAULT_TEXT_LANGUAGE, TextLanguage


@dataclass(frozen=True)
class RawDocument:
    """Bytes read from a source, before format extraction."""

    source: str
    """Name of the KnowledgeBase source it came from (errors and filters use it)."""
    name: str
    """Document name within the source: a file name, a ConfigMap key, the URL."""
    data: bytes
    format: str = "auto"
    """Declared format: auto, text, markdown, html or pdf."""
    content_type: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path (``["Billing", "Refunds"]``)."""

    headings: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Document:
    source: str
    name: str
    title: str
    sections: list[Section]
    language: TextLanguage = DEFAULT_TEXT_LANGUAGE
    """The language its text is indexed in: its source's, or detected (``auto``)."""

    @property
    def text(self) -> str:
        """Title and sections, as one text (language detection reads it)."""
        return "\n".join([self.title, *(s.text for s in self.sections)])


@dataclass(frozen=True)
class ChunkRecord:
    """A passage ready to embed and store."""

    text: str
    """The passage as indexed and returned, starting with its heading context."""
    source: str
    document: str
    title: str
    position: int
    """Index of the chunk within its document."""
    headings: tuple[str, ...] = ()
    language: TextLanguage = DEFAULT_TEXT_LANGUAGE
    """Its document's language: RediSearch stems it in that language."""

    @property
    def chunk_id(self) -> str:
        raw = "\x1f".join((self.source, self.document, str(self.position), self.text))
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Chunk:
    """A retrieved passage with what a citation needs."""

    text: str
    source: str
    title: str
    score: float
    """Relevance 0 to 1: the cosine similarity to the query (what ``min_score`` compares), or in
    text-only mode the fused rank score."""
    document: str = ""
    position: int = 0
    chunk_id: str = ""
    rrf_score: float = 0.0
    """Reciprocal-rank-fusion score the results are ordered by, normalised so 1.0 means first
    in both the full-text and the vector list."""
    text_score: float | None = None
    """BM25 score, when the full-text query matched."""
    extra: dict[str, str] = field(default_factory=dict)
