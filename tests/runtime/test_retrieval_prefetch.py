"""The knowledge lookup started at the caller's final transcript is the one llm_node uses."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from livekit.agents import llm

from agent_runtime.grounding import Grounding, KnowledgeSource
from agent_runtime.retrieval_prefetch import RetrievalPrefetch
from tests.support.knowledge_stub import Chunk, KeywordStore

DOCS = {
    "hours.md": "The clinic opens at 8 am on weekdays and at 9 am on Saturdays.",
    "billing.md": "Invoices are paid by bank transfer within thirty days.",
}


class SlowStore(KeywordStore):
    """A real keyword store that takes ``delay`` seconds per lookup, like a remote one."""

    def __init__(self, docs: dict[str, str], delay: float) -> None:
        super().__init__(docs)
        self.delay = delay

    async def retrieve(self, query: str, top_k: int) -> Sequence[Chunk]:
        self.queries.append(query)
        await asyncio.sleep(self.delay)
        return await KeywordStore(self.docs).retrieve(query, top_k)


def _prefetch(store: KeywordStore) -> RetrievalPrefetch:
    grounding = Grounding([KnowledgeSource("kb", store, top_k=2)], agent="a", namespace="ns")
    return RetrievalPrefetch(grounding)


def _turn(text: str) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="assistant", content="Hello, how can I help?")
    ctx.add_message(role="user", content=text)
    return ctx


async def test_finals_are_joined_like_the_committed_turn_and_reused() -> None:
    store = SlowStore(DOCS, delay=0.05)
    prefetch = _prefetch(store)
    prefetch.on_final_transcript("When does the clinic")
    prefetch.on_final_transcript(" open on Saturdays?")
    await asyncio.sleep(0.1)  # the endpointing delay: both lookups finish meanwhile

    loop = asyncio.get_running_loop()
    start = loop.time()
    question, chunks = await prefetch.context_for(_turn("when does the clinic  open on Saturdays?"))
    waited = loop.time() - start

    assert question == "when does the clinic  open on Saturdays?"
    assert chunks[0].source == "hours.md"
    # One lookup per final (the second covers the whole turn); none started by llm_node.
    assert store.queries == ["When does the clinic", "When does the clinic  open on Saturdays?"]
    assert waited < store.delay  # answered from the finished lookup, not a new one


async def test_a_turn_that_differs_from_the_transcript_is_retrieved_then() -> None:
    store = KeywordStore(DOCS)
    prefetch = _prefetch(store)
    prefetch.on_final_transcript("When do you open?")
    await asyncio.sleep(0.01)  # let the lookups start

    _, chunks = await prefetch.context_for(_turn("How are invoices paid?"))

    assert chunks[0].source == "billing.md"
    assert store.queries == ["When do you open?", "How are invoices paid?"]


async def test_a_new_turn_starts_a_new_question() -> None:
    store = KeywordStore(DOCS)
    prefetch = _prefetch(store)
    prefetch.on_final_transcript("When do you open?")
    prefetch.on_user_turn()
    prefetch.on_final_transcript("How do I pay?")
    await asyncio.sleep(0.01)  # let the lookups start

    assert store.queries == ["When do you open?", "How do I pay?"]


async def test_a_cancelled_reply_leaves_the_lookup_for_the_next_attempt() -> None:
    store = SlowStore(DOCS, delay=0.1)
    prefetch = _prefetch(store)
    prefetch.on_final_transcript("When do you open on Saturdays?")
    # A preemptive reply is superseded (cancelled) while it waits for the lookup...
    first = asyncio.create_task(prefetch.context_for(_turn("When do you open on Saturdays?")))
    await asyncio.sleep(0.02)
    first.cancel()
    # ...and the committed turn's reply still gets the same lookup's result.
    _, chunks = await prefetch.context_for(_turn("When do you open on Saturdays?"))

    assert first.cancelled()
    assert chunks[0].source == "hours.md"
    assert store.queries == ["When do you open on Saturdays?"]


async def test_no_question_after_a_tool_call() -> None:
    store = KeywordStore(DOCS)
    prefetch = _prefetch(store)
    ctx = _turn("When do you open?")
    ctx.add_message(role="assistant", content="Let me check.")

    assert await prefetch.context_for(ctx) == (None, [])
    assert store.queries == []


async def test_close_cancels_lookups_in_flight() -> None:
    store = SlowStore(DOCS, delay=10)
    prefetch = _prefetch(store)
    prefetch.on_final_transcript("When do you open?")
    await asyncio.sleep(0.01)  # let the lookups start
    (_, task) = next(iter(prefetch._lookups.values()))

    prefetch.close()
    # A cancelled task is done once it has run its cancellation; it would sleep 10 s otherwise.
    await asyncio.wait([task], timeout=5)

    assert task.cancelled()
