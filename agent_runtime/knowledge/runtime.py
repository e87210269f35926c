"""The runtime's entry point: one :class:`Retriever` per knowledge base an agent uses.

``agent_runtime.knowledge_hook`` looks up ``build_retriever`` here. The Redis URL and the
embeddings key come from the environment variables the operator named in the rendered config.
Embedders are shared between knowledge bases with the same model, so the local model loads once
per process.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubevox_api import ResolvedKnowledgeBase
from kubevox_api.languages import TEXT_LANGUAGES, primary_language, text_language

from .embedders import (
    Embedder,
    LocalEmbedder,
    MultilingualEmbedder,
    StaticEmbedder,
    make_embedder,
)
from .errors import KnowledgeError
from .manifest import API_KEY_ENVS
from .retriever import Retriever

_embedders: dict[str, Embedder] = {}


def _embedder(
    kb: ResolvedKnowledgeBase, env: Mapping[str, str], threads: int | None = None
) -> Embedder:
    key_envs = [kb.embedding_api_key_env] if kb.embedding_api_key_env else []
    key = next((env[e] for e in [*key_envs, *API_KEY_ENVS] if env.get(e)), None)
    spec_key = kb.embedding.model_dump_json()
    embedder = _embedders.get(spec_key)
    if embedder is None:
        embedder = _embedders[spec_key] = make_embedder(kb.embedding, key, threads=threads)
    return embedder


def prewarm_embedders(
    kbs: list[ResolvedKnowledgeBase], env: Mapping[str, str], *, threads: int | None = None
) -> None:
    """Load the local embedding models (static matrix, MiniLM, multilingual encoder) before the
    first call: a caller's first question must not wait for one (retrieval has a one-second
    budget per turn). A model already loaded, in this process or before it was forked, is kept.

    ``threads``: for a model loaded in a process that others are forked from, 1 (ONNX Runtime's
    thread pool does not survive a fork)."""
    for kb in kbs:
        embedder = _embedder(kb, env, threads)
        if isinstance(embedder, LocalEmbedder | StaticEmbedder | MultilingualEmbedder):
            embedder.encode(["warm-up"])


def build_retriever(
    kb: ResolvedKnowledgeBase, env: Mapping[str, str], *, language: str | None = None
) -> Retriever:
    """``language``: the BCP 47 tag callers speak (the agent's), a hint for the full-text
    search of a knowledge base in several languages (none for a language kubevox has no
    tables for)."""
    url = env.get(kb.redis_url_env)
    if not url:
        raise KnowledgeError(f"knowledge base {kb.name}: ${kb.redis_url_env} (Redis URL) is unset")
    embedder = _embedder(kb, env)
    return Retriever.from_url(
        url,
        kb.index_name,
        embedder,
        default_top_k=kb.top_k,
        default_min_score=kb.min_score,
        language=text_language(language) if known(language) else None,
    )


def known(language: str | None) -> bool:
    """Whether ``language`` (a BCP 47 tag) is one kubevox reads text in."""
    return language is not None and primary_language(language) in TEXT_LANGUAGES
