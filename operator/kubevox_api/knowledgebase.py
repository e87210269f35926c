"""KnowledgeBase: documents that ground a VoiceAgent's answers, indexed in Redis."""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel, Rule
from .common import (
    HTTP_URL,
    Condition,
    ConfigMapKeySelector,
    Credentials,
    SecretKeySelector,
    ShortString,
    UniqueByName,
)
from .contract import API_VERSION, KNOWLEDGE_BASE_KIND
from .languages import DEFAULT_TEXT_LANGUAGE, TEXT_LANGUAGES, KnowledgeLanguage, TextLanguage

DURATION = r"^([0-9]+(\.[0-9]+)?(s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(s|m|h)")
MIN_REFRESH_SECONDS = 60
"""Below a minute, refreshes would re-read every source and rebuild the index back to back."""
INDEX_NAME = r"^[a-zA-Z][a-zA-Z0-9_-]{0,62}$"

SOURCE_KINDS = ("inline", "configMap", "secret", "url")

# The models the ``local`` embedding provider ships (see the ``Embedding.model`` docs): two
# English ones and a multilingual one.
LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
LOCAL_STATIC_EMBEDDING_MODEL = "all-MiniLM-L6-v2-static"
LOCAL_MULTILINGUAL_EMBEDDING_MODEL = "universal-sentence-encoder-multilingual"
LOCAL_EMBEDDING_MODELS = (
    LOCAL_EMBEDDING_MODEL,
    LOCAL_STATIC_EMBEDDING_MODEL,
    LOCAL_MULTILINGUAL_EMBEDDING_MODEL,
)


class Source(KubeModel):
    """One document source: exactly one of inline, configMap, secret or url."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9][-_.a-zA-Z0-9]{0,62}$")]
    """Identifier of the source in status, errors and citations; unique in the KnowledgeBase."""
    title: Annotated[str, StringConstraints(max_length=256)] | None = None
    """Human title of the document (default: taken from the document itself)."""
    format: Literal["auto", "text", "markdown", "html", "pdf"] = "auto"
    """How to read the content; ``auto`` decides from the file name or content type."""
    inline: Annotated[str, StringConstraints(min_length=1, max_length=262144)] | None = None
    """The document's text, written in the manifest."""
    config_map: ConfigMapKeySelector | None = None
    """A ConfigMap key (or all its keys), one document per key."""
    secret: SecretKeySelector | None = None
    """A Secret key, for documents that must not be readable by everyone in the namespace."""
    url: Annotated[str, StringConstraints(pattern=HTTP_URL, max_length=2048)] | None = None
    """An http(s) URL fetched at ingestion time."""
    language: KnowledgeLanguage | None = None
    """The language of this source's documents, when it differs from the KnowledgeBase's
    ``language``: one of ``en``, ``fr``, ``es``, ``de``, ``ar``, or ``auto`` (detected per
    document). Changing it re-indexes."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="[has(self.inline), has(self.configMap), has(self.secret), has(self.url)]"
            ".filter(x, x).size() == 1",
            message="each source must set exactly one of inline, configMap, secret or url",
            check=lambda s: (
                sum(v is not None for v in (s.inline, s.config_map, s.secret, s.url)) == 1
            ),
        ),
    )


class Chunking(KubeModel):
    """How documents are cut into the passages the agent retrieves."""

    size_tokens: int = Field(default=256, ge=32, le=2048)
    """Passage length, in tokens. Short passages keep spoken answers focused."""
    overlap_tokens: int = Field(default=32, ge=0, le=512)
    """Tokens shared by consecutive passages, so no sentence is cut off from its context."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.overlapTokens < self.sizeTokens",
            message="overlapTokens must be smaller than sizeTokens",
            check=lambda s: s.overlap_tokens < s.size_tokens,
            field_path=".overlapTokens",
        ),
    )


class Embedding(KubeModel):
    """The model that turns passages and questions into vectors."""

    provider: Literal["local", "openai"] = "local"
    """``local``: a model bundled in the image, no network (see ``model``);
    ``openai``: the OpenAI embeddings API or a compatible server."""
    model: ShortString | None = None
    """Embedding model. openai: any model of the API (default text-embedding-3-small).
    local, one of three. English: ``all-MiniLM-L6-v2`` (default; the transformer, 384
    dimensions: the best retrieval quality, but about 20 passages of 256 tokens per second on 2
    cores, so a large knowledge base takes long to index, and about 5 ms per question) or
    ``all-MiniLM-L6-v2-static`` (distilled from it into one vector per token, 256 dimensions:
    indexes hundreds of passages per second, limited by Redis, and embeds a question in well
    under a millisecond; somewhat lower quality on paraphrased questions, mostly made up by the
    hybrid full-text search). Other languages: ``universal-sentence-encoder-multilingual``
    (Google's Universal Sentence Encoder multilingual v3, 512 dimensions, 16 languages: ar, de,
    en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-TW; a question in one of them finds
    passages written in another). Changing the model re-indexes."""
    dimensions: int | None = Field(default=None, ge=8, le=4096)
    """Vector size, for openai models that can shorten their vectors."""
    base_url: Annotated[str, StringConstraints(pattern=HTTP_URL, max_length=2048)] | None = Field(
        default=None, alias="baseURL"
    )
    """Override of the embeddings API endpoint."""
    credentials: Credentials | None = None
    """API key of the embeddings provider, from a Secret."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.provider != 'openai' || has(self.credentials) || has(self.baseURL)",
            message="embedding.credentials is required for provider openai",
            check=lambda s: (
                s.provider != "openai" or s.credentials is not None or s.base_url is not None
            ),
            field_path=".credentials",
        ),
        Rule(
            cel="self.provider != 'local' || !has(self.dimensions)",
            message="embedding.dimensions: the local provider's models have fixed sizes; unset it",
            check=lambda s: s.provider != "local" or s.dimensions is None,
            field_path=".dimensions",
        ),
        Rule(
            cel="self.provider != 'local' || !has(self.model) || self.model in "
            f"[{', '.join(repr(m) for m in LOCAL_EMBEDDING_MODELS)}]",
            message="embedding.model for provider local must be "
            + ", ".join(f"'{m}'" for m in LOCAL_EMBEDDING_MODELS[:-1])
            + f" or '{LOCAL_EMBEDDING_MODELS[-1]}'",
            check=lambda s: s.provider != "local" or s.model in (None, *LOCAL_EMBEDDING_MODELS),
            field_path=".model",
        ),
    )


class Store(KubeModel):
    """Where the index lives: Redis with the search module (Redis Stack, Redis 8)."""

    redis_url_secret_ref: SecretKeySelector
    """Secret key holding the Redis URL (``redis://user:password@host:6379/0``)."""
    index_name: Annotated[str, StringConstraints(pattern=INDEX_NAME)] | None = None
    """Name agents query (a Redis search alias; each content version gets its own index behind
    it). Default: ``kb_<namespace>_<name>`` (``_`` appears in no Kubernetes name, so no two
    KnowledgeBases share a default); past 100 characters it is cut and ends in ``_`` and 12 hex
    digits of the SHA-256 of ``<namespace>/<name>``. The first KnowledgeBase to index under a
    name owns it (its uid is recorded in Redis, ``kv:<indexName>:owner``): another one naming
    it fails with reason ``IndexOwnedByOther`` and changes nothing in it."""


class Limits(KubeModel):
    """Bounds that keep one bad source from hurting the ingestion."""

    max_source_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    """Sources larger than this are rejected (and named in status)."""
    fetch_timeout_seconds: int = Field(default=30, ge=1, le=600)
    """Timeout of each URL fetch."""


class KnowledgeBaseSpec(KubeModel):
    """The desired state of a KnowledgeBase."""

    sources: UniqueByName[Source] = Field(min_length=1, max_length=256)
    """The documents to index."""
    language: KnowledgeLanguage = DEFAULT_TEXT_LANGUAGE
    """The language of the documents: ``en`` (default), ``fr``, ``es``, ``de``, ``ar``, or
    ``auto``. Full-text search stems each document's words in its language and ignores that
    language's stop words (a French question finds "pharmacies" in "la pharmacie est
    ouverte"), and an agent's grounding guard compares words the same way. ``auto`` detects the
    language of each document among these five by its common words and letters: meant for
    knowledge bases that mix languages; a document too short or in another language is taken as
    English. A source's own ``language`` overrides this for its documents. At query time a
    question is searched in the language it is detected in among the knowledge base's languages
    (else the agent's ``language``, else all of them). Changing it re-indexes."""
    chunking: Chunking = Field(default_factory=Chunking)
    """Passage size and overlap."""
    embedding: Embedding = Field(default_factory=Embedding)
    """Embedding model."""
    store: Store
    """The Redis index."""
    refresh_interval: Annotated[str, StringConstraints(pattern=DURATION, max_length=32)] | None = (
        None
    )
    """Re-read the sources this often (e.g. ``6h``; at least ``1m``) and re-index when they
    changed. URLs are otherwise only read when the spec changes."""
    limits: Limits = Field(default_factory=Limits)
    """Ingestion limits."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.refreshInterval) || "
            f"duration(self.refreshInterval) >= duration('{MIN_REFRESH_SECONDS}s')",
            message="refreshInterval must be at least 1m",
            check=lambda s: (
                s.refresh_interval is None
                or duration_seconds(s.refresh_interval) >= MIN_REFRESH_SECONDS
            ),
            field_path=".refreshInterval",
        ),
    )


def duration_seconds(text: str) -> float:
    """``6h``, ``1h30m``, ``90s`` → seconds (the pattern DURATION has validated the form)."""
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in _DURATION_PART.findall(text))


class SourceError(KubeModel):
    """Why one source could not be indexed."""

    source: ShortString
    """The source's name."""
    message: Annotated[str, StringConstraints(max_length=4096)]
    """What went wrong."""


class LanguageDocuments(KubeModel):
    """How many documents of the live index are in one language."""

    language: TextLanguage
    """The language (ISO 639-1 code)."""
    documents: int = Field(ge=0)
    """Documents indexed in it."""


class KnowledgeBaseStatus(KubeModel):
    """The observed state of a KnowledgeBase."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The .metadata.generation this status was computed from."""
    phase: Literal["Pending", "Indexing", "Ready", "Failed"] | None = None
    """Pending (waiting for its inputs), Indexing (a Job runs), Ready (the index answers),
    Failed (the last ingestion failed; a previous version may still answer)."""
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    """Ready, Indexing and Failed, with reasons."""
    documents: int | None = Field(default=None, ge=0)
    """Documents in the live index."""
    chunks: int | None = Field(default=None, ge=0)
    """Passages in the live index."""
    content_hash: ShortString | None = None
    """Hash of the indexed content; unchanged content is not re-indexed."""
    index_name: ShortString | None = None
    """The alias agents query."""
    active_index: ShortString | None = None
    """The versioned index the alias points at."""
    last_indexed_time: datetime | None = None
    """When the live index was built."""
    duration_seconds: float | None = Field(default=None, ge=0)
    """How long the last ingestion took."""
    source_errors: list[SourceError] = Field(default_factory=list, max_length=256)
    """Sources that could not be indexed in the last ingestion."""
    languages: list[LanguageDocuments] = Field(default_factory=list, max_length=len(TEXT_LANGUAGES))
    """Documents of the live index per language, most first: the languages its documents were
    declared in or, for ``auto``, detected in. Empty for an index built before languages."""
    job_name: ShortString | None = None
    """The ingestion Job of the current content."""


INDEX_NAME_MAX = 100


def default_index_name(namespace: str, name: str) -> str:
    """``kb_<namespace>_<name>``; too long: cut, with a hash of namespace/name (unique, stable)."""
    full = f"kb_{namespace}_{name}"
    if len(full) <= INDEX_NAME_MAX:
        return full
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:12]
    return f"{full[: INDEX_NAME_MAX - 13]}_{digest}"


class KnowledgeBase(KubeModel):
    """A set of documents, chunked and embedded into a Redis vector index, that grounds the
    answers of the VoiceAgents referencing it."""

    model_config = KubeModel.model_config | {"extra": "ignore"}

    # A Literal type needs the literal; the default is the contract's constant (a test checks
    # they agree).
    api_version: Literal["kubevox.dev/v1alpha1"] = API_VERSION
    kind: Literal["KnowledgeBase"] = KNOWLEDGE_BASE_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: KnowledgeBaseSpec
    status: KnowledgeBaseStatus | None = None

    @property
    def index_name(self) -> str:
        """The Redis search alias agents query."""
        return self.spec.store.index_name or default_index_name(
            str(self.metadata.get("namespace") or "default"), str(self.metadata.get("name", ""))
        )


def stored_knowledge_base(body: dict[str, Any]) -> tuple[KnowledgeBase, str | None]:
    """Parse a KnowledgeBase as the API server stored it. One created before refreshInterval
    had its one-minute minimum still parses: it is refreshed every minute, and the note (None
    otherwise) says so, for an Event."""
    spec = body.get("spec") or {}
    interval = spec.get("refreshInterval")
    if not isinstance(interval, str) or not re.fullmatch(DURATION, interval):
        return KnowledgeBase.model_validate(body), None
    if duration_seconds(interval) >= MIN_REFRESH_SECONDS:
        return KnowledgeBase.model_validate(body), None
    fixed = copy.deepcopy(body)
    fixed["spec"]["refreshInterval"] = "1m"
    note = (
        f"spec.refreshInterval {interval} is below the minimum of 1m (the API server refuses "
        "it since); refreshing every 1m. Set refreshInterval to 1m or more."
    )
    return KnowledgeBase.model_validate(fixed), note
