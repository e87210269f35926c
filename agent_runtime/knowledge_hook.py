"""Where the runtime gets its retrievers: the knowledge-base package, when it provides one.

The runtime only needs :class:`agent_runtime.grounding.Retriever`. The knowledge-base package
plugs in by exposing ``build_retriever(kb: ResolvedKnowledgeBase, env) -> Retriever`` in
``agent_runtime.knowledge``; until it does, agents with knowledge bases answer ungrounded and
say so once in the log.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from kubevox_operator.api import AgentRuntimeConfig, ResolvedKnowledgeBase

from .grounding import Grounding, KnowledgeSource, Retriever

log = logging.getLogger("kubevox.grounding")

RetrieverFactory = Callable[[ResolvedKnowledgeBase, Mapping[str, str]], Retriever]


def default_factory() -> RetrieverFactory | None:
    try:
        module = importlib.import_module("agent_runtime.knowledge")
    except ImportError:
        return None
    factory: Any = getattr(module, "build_retriever", None)
    return factory if callable(factory) else None


def build_grounding(
    config: AgentRuntimeConfig,
    factory: RetrieverFactory | None = None,
    env: Mapping[str, str] = os.environ,
) -> Grounding | None:
    if not config.knowledge_bases:
        return None
    factory = factory or default_factory()
    if factory is None:
        log.warning(
            "no knowledge retriever available; answering without grounding",
            extra={"knowledge_bases": [kb.name for kb in config.knowledge_bases]},
        )
        return None
    sources = [
        KnowledgeSource(kb.name, factory(kb, env), top_k=kb.top_k, min_score=kb.min_score)
        for kb in config.knowledge_bases
    ]
    return Grounding(sources, agent=config.name, namespace=config.namespace)
