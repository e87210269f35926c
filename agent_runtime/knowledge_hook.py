"""Where the runtime gets its retrievers: ``agent_runtime.knowledge.build_retriever`` (tests may
pass another factory speaking the same :class:`agent_runtime.grounding.Retriever` protocol)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Protocol, TypeVar

from kubevox_api import AgentRuntimeConfig, ResolvedKnowledgeBase

from .grounding import Grounding, KnowledgeSource, Retriever
from .knowledge import build_retriever

log = logging.getLogger("kubevox.grounding")

G = TypeVar("G", bound=Grounding)


class RetrieverFactory(Protocol):
    """Makes the retriever of one knowledge base; ``language`` is the BCP 47 tag the agent's
    callers speak (its STT's language, else its own)."""

    def __call__(
        self, kb: ResolvedKnowledgeBase, env: Mapping[str, str], *, language: str | None = None
    ) -> Retriever: ...


def build_grounding(
    config: AgentRuntimeConfig,
    factory: RetrieverFactory | None = None,
    env: Mapping[str, str] = os.environ,
    kind: type[G] = Grounding,  # type: ignore[assignment]
) -> G | None:
    """The agent's grounding (None: it has no knowledge base); ``kind`` a subclass that
    observes it (conversation tests record the passages each answer was given)."""
    if not config.knowledge_bases:
        return None
    factory = factory or build_retriever
    spoken = config.spec.stt.language or config.spec.language
    sources = [
        KnowledgeSource(
            kb.name, factory(kb, env, language=spoken), top_k=kb.top_k, min_score=kb.min_score
        )
        for kb in config.knowledge_bases
    ]
    return kind(sources, agent=config.name, namespace=config.namespace)
