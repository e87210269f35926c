"""The VoiceAgent's conversation: persona, greeting, tools, grounding, time limit, apology."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Protocol

from kubevox_operator.api import AgentRuntimeConfig
from livekit.agents import Agent, ModelSettings, RunContext, function_tool, llm
from livekit.agents.llm import Tool, Toolset

from . import metrics
from .callrecord import CallRecord
from .controls import CallControls
from .grounding import RetrievedChunk, with_context
from .grounding_guard import GroundingGuard

log = logging.getLogger("kubevox.agent")

APOLOGY = "I'm sorry, I'm having trouble answering right now. Could you please try again?"
TIME_LIMIT_FAREWELL = (
    "I'm sorry, we've reached the time limit for this call. Thank you for calling, goodbye."
)
TRANSFER_NOTICE = "Please hold while I transfer you to a colleague."

END_CALL_DESCRIPTION = (
    "End the call once the caller has clearly said they are done (for example 'that's all, "
    "bye'). Do not use it when the intent is unclear or the caller asks to be transferred."
)


def full_instructions(config: AgentRuntimeConfig) -> str:
    spec = config.spec
    lang = spec.language
    if lang.split("-")[0] != "en":
        return f"{spec.instructions}\n\nAlways reply in the language with the code '{lang}'."
    return spec.instructions


def guard_for(config: AgentRuntimeConfig) -> GroundingGuard | None:
    """The grounding guard the spec asks for, if any (only agents with knowledge bases)."""
    spec = config.spec
    mode = spec.grounding_guard.mode
    if not config.knowledge_bases or mode == "disabled":
        return None
    if mode == "auto" and spec.llm.provider != "local":
        return None
    return GroundingGuard(
        min_support=spec.grounding_guard.min_support,
        fallback=spec.grounding_guard.fallback,
        refusal=spec.grounding_guard.refusal,
    )


async def _guarded(
    guard: GroundingGuard, stream: AsyncIterable[Any], question: str, passages: list[str]
) -> AsyncIterator[Any]:
    """Pass ``stream`` through the guard: its text is checked sentence by sentence; tool calls
    (actions, not statements) go through untouched."""
    passthrough: list[Any] = []

    async def text() -> AsyncIterator[str]:
        async for chunk in stream:
            if isinstance(chunk, str):
                yield chunk
            elif isinstance(chunk, llm.ChatChunk) and chunk.delta and chunk.delta.tool_calls:
                passthrough.append(chunk)
            elif isinstance(chunk, llm.ChatChunk):
                if chunk.delta and chunk.delta.content:
                    yield chunk.delta.content
            else:
                passthrough.append(chunk)

    async for sentence in guard.guard(text(), question, passages):
        yield sentence
    for chunk in passthrough:
        yield chunk


class ContextSource(Protocol):
    """Where ``llm_node`` gets the knowledge for a turn: a :class:`~.grounding.Grounding`, or a
    :class:`~.retrieval_prefetch.RetrievalPrefetch` that started the lookup earlier."""

    async def context_for(
        self, chat_ctx: llm.ChatContext
    ) -> tuple[str | None, list[RetrievedChunk]]: ...


class KubevoxAgent(Agent):
    def __init__(
        self,
        config: AgentRuntimeConfig,
        *,
        record: CallRecord,
        controls: CallControls,
        grounding: ContextSource | None = None,
    ) -> None:
        self._config = config
        self._record = record
        self._controls = controls
        self._grounding = grounding
        self._guard = guard_for(config) if grounding is not None else None
        self._timer: asyncio.Task[None] | None = None
        super().__init__(instructions=full_instructions(config), tools=self._spec_tools())

    # --- tools, as the spec enables them ----------------------------------------------------

    def _spec_tools(self) -> list[Tool | Toolset]:
        spec = self._config.spec.tools
        tools: list[Tool | Toolset] = []
        if spec.end_call:
            tools.append(
                function_tool(self._end_call, name="end_call", description=END_CALL_DESCRIPTION)
            )
        if spec.transfer is not None:
            tools.append(
                function_tool(
                    self._transfer, name="transfer_to_human", description=spec.transfer.description
                )
            )
        return tools

    async def _end_call(self, context: RunContext[None]) -> str:
        self._record.set_outcome("agent_ended")
        # The goodbye the model says next reuses this speech handle: close once it is played.
        context.speech_handle.add_done_callback(lambda _: context.session.shutdown())
        return "The call will end now. Say a short goodbye."

    async def _transfer(self, context: RunContext[None]) -> str | None:
        transfer = self._config.spec.tools.transfer
        assert transfer is not None
        if not self._controls.caller_is_phone():
            return (
                "Transfer is only possible for phone callers. Apologise and offer to "
                "help further or take a message."
            )
        self._record.set_outcome("transferred")
        await context.session.say(TRANSFER_NOTICE, allow_interruptions=False)
        try:
            await self._controls.transfer(transfer.to)
        except Exception:
            log.exception("transfer failed", extra={"transfer_to": transfer.to})
            self._record.outcome = None
            return "The transfer failed. Apologise and offer to take a message instead."
        context.session.shutdown()
        return None

    # --- lifecycle ------------------------------------------------------------------------

    async def on_enter(self) -> None:
        greeting = self._config.spec.greeting
        if greeting:
            self.session.say(greeting)
        self._timer = asyncio.create_task(self._time_limit(), name="kubevox.call_time_limit")

    async def on_exit(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def _time_limit(self) -> None:
        await asyncio.sleep(self._config.spec.max_call_duration_seconds)
        log.info("call reached maxCallDurationSeconds", extra={"call_id": self._record.call_id})
        self._record.set_outcome("max_duration")
        self.session.interrupt()
        await self.session.say(TIME_LIMIT_FAREWELL, allow_interruptions=False)
        self.session.shutdown()

    # --- the LLM node: grounding in, apology out ----------------------------------------------

    async def llm_node(
        self,
        chat_ctx: llm.ChatContext,
        tools: list[Tool],
        model_settings: ModelSettings,
    ) -> AsyncIterator[llm.ChatChunk | str | Any]:
        question, passages = None, []
        if self._grounding is not None:
            start = time.perf_counter()
            question, chunks = await self._grounding.context_for(chat_ctx)
            metrics.retrieval_wait.labels(self._config.name, self._config.namespace).observe(
                time.perf_counter() - start
            )
            chat_ctx = with_context(chat_ctx, chunks)
            passages = [c.text for c in chunks]
        produced = False
        try:
            stream: AsyncIterable[Any] = Agent.default.llm_node(
                self, chat_ctx, tools, model_settings
            )
            if self._guard is not None and question is not None:
                stream = _guarded(self._guard, stream, question, passages)
            async for chunk in stream:
                produced = True
                yield chunk
        except Exception as e:
            # Every provider failed for good: the caller hears an apology, never silence.
            log.error("all language model providers failed", extra={"error": repr(e)})
            if not produced:
                yield APOLOGY
