"""Start the knowledge lookup when the caller's words are final, not when the turn ends.

Between the speech recogniser's final transcript and the end of the caller's turn, livekit
waits out the endpointing delay (hundreds of milliseconds). Retrieval started at the final
transcript runs inside that wait, so by the time ``llm_node`` asks for the context it is
usually there, and the lookup adds nothing to the caller's wait. The key is the transcript
livekit will commit (its finals joined by spaces); when the committed turn differs (a late
final, an edited turn, a text turn), ``context_for`` simply retrieves then.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from livekit.agents import llm

from .grounding import Grounding, RetrievedChunk, last_user_text

KEEP = 4
"""Lookups kept: the current turn's attempts (each final re-keys it) and a preemptive one."""
MAX_AGE_SECONDS = 30.0
"""A prefetched result older than this is not reused (the index may have been re-built)."""


def _key(query: str) -> str:
    return " ".join(query.split()).casefold()


class RetrievalPrefetch:
    """Wraps a :class:`Grounding` with lookups started ahead of the turn's end."""

    def __init__(self, grounding: Grounding) -> None:
        self.grounding = grounding
        self._pending = ""  # the finals of the turn in progress, joined as livekit joins them
        self._lookups: OrderedDict[str, tuple[float, asyncio.Task[list[RetrievedChunk]]]] = (
            OrderedDict()
        )

    # --- fed by the session's events -------------------------------------------------------

    def on_final_transcript(self, transcript: str) -> None:
        if not transcript.strip():
            return
        self._pending = f"{self._pending} {transcript}".strip()
        self.start(self._pending)

    def on_user_turn(self) -> None:
        """The caller's turn was committed: the next final starts a new question."""
        self._pending = ""

    def start(self, query: str) -> None:
        key = _key(query)
        if not key or self._fresh(key) is not None:
            return
        task = asyncio.create_task(self.grounding.retrieve(query), name="kubevox.prefetch")
        # Retrieval never raises (a store failure is an empty result); a cancelled or
        # evicted lookup must not log "exception never retrieved" either.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._lookups[key] = (time.monotonic(), task)
        while len(self._lookups) > KEEP:
            self._lookups.popitem(last=False)

    def _fresh(self, key: str) -> asyncio.Task[list[RetrievedChunk]] | None:
        entry = self._lookups.get(key)
        if entry is None:
            return None
        started, task = entry
        if time.monotonic() - started > MAX_AGE_SECONDS or task.cancelled():
            del self._lookups[key]
            return None
        self._lookups.move_to_end(key)
        return task

    # --- used by the agent's llm_node ------------------------------------------------------

    async def context_for(
        self, chat_ctx: llm.ChatContext
    ) -> tuple[str | None, list[RetrievedChunk]]:
        """As :meth:`Grounding.context_for`, answered by a prefetched lookup when one matches."""
        query = last_user_text(chat_ctx)
        if query is None:
            return None, []
        task = self._fresh(_key(query))
        if task is None:
            return query, await self.grounding.retrieve(query)
        # shield: a cancelled llm_node (interruption, superseded preemptive reply) must not
        # cancel a lookup the next attempt may reuse.
        return query, await asyncio.shield(task)

    def close(self) -> None:
        for _, task in self._lookups.values():
            task.cancel()
        self._lookups.clear()
