"""Knowledge grounding: retrieve the chunks for a caller's turn and hand them to the LLM.

The runtime depends only on the small :class:`Retriever` protocol; the knowledge-base package
provides the real one. A store that is down never blocks an answer: the agent answers without
grounding, and the outage is counted and logged once, not on every turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from livekit.agents import llm

from . import metrics
from .reference_data import KNOWLEDGE_PASSAGES, KNOWLEDGE_QUESTION, fence

log = logging.getLogger("kubevox.grounding")

RETRIEVAL_TIMEOUT = 1.0
"""A turn waits at most this long for the store; a slower store counts as down."""


class RetrievedChunk(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def score(self) -> float: ...


class Retriever(Protocol):
    async def retrieve(self, query: str, top_k: int) -> Sequence[RetrievedChunk]: ...


@dataclass(frozen=True)
class KnowledgeSource:
    name: str
    retriever: Retriever
    top_k: int
    min_score: float = 0.0


class Grounding:
    def __init__(
        self,
        sources: Sequence[KnowledgeSource],
        *,
        agent: str,
        namespace: str,
        timeout: float = RETRIEVAL_TIMEOUT,
    ) -> None:
        self._sources = list(sources)
        self._labels = (agent, namespace)
        self._timeout = timeout
        self._down: set[str] = set()  # sources currently in an outage

    @property
    def outages(self) -> frozenset[str]:
        return frozenset(self._down)

    async def warm(self) -> None:
        """Let each retriever that can connect and load what it needs before the first
        question (it runs while the agent greets the caller)."""
        warms = [w() for s in self._sources if (w := getattr(s.retriever, "warm", None))]
        await asyncio.gather(*warms, return_exceptions=True)

    async def _one(self, src: KnowledgeSource, query: str) -> list[RetrievedChunk]:
        try:
            chunks = await asyncio.wait_for(src.retriever.retrieve(query, src.top_k), self._timeout)
        except Exception as e:  # any store failure: answer without this source
            if src.name not in self._down:
                self._down.add(src.name)
                metrics.retrieval_failures.labels(*self._labels).inc()
                log.warning(
                    "knowledge base unavailable; answering without grounding until it recovers",
                    extra={"knowledge_base": src.name, "error": repr(e)},
                )
            return []
        if src.name in self._down:
            self._down.discard(src.name)
            log.info("knowledge base recovered", extra={"knowledge_base": src.name})
        return [c for c in chunks if c.score >= src.min_score]

    async def retrieve(self, query: str) -> list[RetrievedChunk]:
        if not self._sources or not query.strip():
            return []
        start = time.perf_counter()
        results = await asyncio.gather(*(self._one(s, query) for s in self._sources))
        metrics.retrieval_latency.labels(*self._labels).observe(time.perf_counter() - start)
        chunks = [c for r in results for c in r]
        return sorted(chunks, key=lambda c: c.score, reverse=True)

    async def context_for(
        self, chat_ctx: llm.ChatContext
    ) -> tuple[str | None, list[RetrievedChunk]]:
        """The caller's last question and the chunks retrieved for it (None: no new question,
        e.g. the turn after a tool call)."""
        query = last_user_text(chat_ctx)
        if query is None:
            return None, []
        return query, await self.retrieve(query)

    async def ground(self, chat_ctx: llm.ChatContext) -> llm.ChatContext:
        """A copy of ``chat_ctx`` with the retrieved context after the last user message
        (the session's own history is not modified)."""
        _, chunks = await self.context_for(chat_ctx)
        return with_context(chat_ctx, chunks)


CONTEXT_HEADER = (
    "Answer the caller's question with these excerpts from the knowledge base. If they do not "
    "contain the answer, say you don't know."
)


def with_context(chat_ctx: llm.ChatContext, chunks: Sequence[RetrievedChunk]) -> llm.ChatContext:
    """A copy of ``chat_ctx`` whose last caller message carries the passages, fenced, before
    the caller's words (one user message: templates that want user and assistant turns to
    alternate accept it). The session's own history is not modified."""
    if not chunks:
        return chat_ctx
    passages = [c.text for c in chunks]
    grounded = chat_ctx.copy()
    last = _last_user_message(grounded)
    question = (last.text_content or "") if last is not None else ""
    content = grounded_question(fence(passages), question)
    extra = {KNOWLEDGE_PASSAGES: passages, KNOWLEDGE_QUESTION: question}
    if last is None:
        grounded.add_message(role="user", content=content, extra=extra)
    else:
        at = grounded.items.index(last)
        grounded.items[at] = last.model_copy(
            update={"content": [content], "extra": {**last.extra, **extra}}
        )
    return grounded


def _last_user_message(chat_ctx: llm.ChatContext) -> llm.ChatMessage | None:
    for item in reversed(chat_ctx.items):
        if item.type == "message" and item.role == "user":
            return item
    return None


def grounded_question(fenced: str, question: str) -> str:
    return f"{CONTEXT_HEADER}\n{fenced}\n\nThe caller said: {question}"


def last_user_text(chat_ctx: llm.ChatContext) -> str | None:
    """The caller's question this reply answers (None: the turn after a tool call)."""
    for item in reversed(chat_ctx.items):
        if item.type == "message" and item.role == "user":
            return item.text_content or ""
        if item.type == "message" and item.role == "assistant":
            return None  # the turn after a tool call: already grounded
    return None
