"""Reading a KnowledgeBase manifest and the settings the CLI takes from flags or environment."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from kubevox_api import KnowledgeBase
from kubevox_api.contract import KNOWLEDGE_BASE_KIND
from pydantic import ValidationError

from .embedders import Embedder, make_embedder
from .errors import KnowledgeError

REDIS_URL_ENV = "REDIS_URL"
# The ingest Job gets the key as KUBEVOX_EMBEDDING_API_KEY; a laptop usually has OPENAI_API_KEY.
API_KEY_ENVS = ("KUBEVOX_EMBEDDING_API_KEY", "OPENAI_API_KEY")


def load_knowledge_base(path: Path) -> KnowledgeBase:
    """The first KnowledgeBase in a YAML file (``-`` reads standard input)."""
    try:
        text = os.fdopen(0).read() if str(path) == "-" else path.read_text()
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"cannot read {path}: {exc}") from exc
    for doc in docs:
        if doc.get("kind") == KNOWLEDGE_BASE_KIND:
            try:
                return KnowledgeBase.model_validate(doc)
            except ValidationError as exc:
                raise KnowledgeError(f"{path}: invalid KnowledgeBase:\n{exc}") from exc
    raise KnowledgeError(f"{path}: no KnowledgeBase object in the file")


def redis_url(flag: str | None) -> str:
    url = flag or os.environ.get(REDIS_URL_ENV)
    if not url:
        raise KnowledgeError(f"no Redis URL: pass --redis-url or set {REDIS_URL_ENV}")
    return url


def embedder_for(kb: KnowledgeBase) -> Embedder:
    key = next((os.environ[e] for e in API_KEY_ENVS if os.environ.get(e)), None)
    if (
        kb.spec.embedding.provider == "openai"
        and key is None
        and kb.spec.embedding.base_url is None
    ):
        raise KnowledgeError(f"embedding provider openai needs an API key in {API_KEY_ENVS[0]}")
    return make_embedder(kb.spec.embedding, key)
