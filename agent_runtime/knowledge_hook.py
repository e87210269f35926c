"""Where the runtime gets its retrievers: ``agent_runtime.knowledge.build_retriever`` (tests may
pass another factory speaking the same :class:`agent_runtime.grounding.Retriever` protocol)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from kubevox_api import AgentRuntimeConfig, ResolvedKnowledgeBase

from .grounding import Grounding, KnowledgeSource, Retriever
from .knowledge import build_retriever

log = logging.getLogger("kubevox.grounding")

RetrieverFactory = Callable[[ResolvedKnowledgeBase, Mapping[str, str]], Retriever]


def build_grounding(
    config: AgentRuntimeConfig,
    factory: RetrieverFactory | None = None,
    env: Mapping[str, str] = os.environ,
) -> Grounding | None:
    if not config.knowledge_bases:
        return None
    factory = factory or build_retriever
    sources = [
        KnowledgeSource(kb.name, factory(kb, env), top_k=kb.top_k, min_score=kb.min_score)
        for kb in config.knowledge_bases
    ]
    return Grounding(sources, agent=config.name, namespace=config.namespace)
