"""The VoiceAgent's conversation: persona, greeting, tools, grounding, time limit, apology."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any, Protocol

from kubevox_api import AgentRuntimeConfig, ResolvedPhrases, phrases_for
from kubevox_api.languages import primary_language, text_language
from livekit.agents import Agent, ModelSettings, RunContext, StopResponse, function_tool, llm
from livekit.agents.llm import Tool, Toolset
from livekit.agents.voice.events import ConversationItemAddedEvent, UserStateChangedEvent

from . import metrics
from .call_data import CALL_DATA_RULES, with_call_data
from .callrecord import CallRecord
from .controls import CallControls
from .grounding import RetrievedChunk, with_context
from .grounding_guard import GroundingGuard
from .history import HistoryWindow, history_budget
from .recording import CallRecording, Consent
from .reference_data import KNOWLEDGE_RULES

log = logging.getLogger("kubevox.agent")

# What the agent says by itself (apology, goodbyes, silence prompt, transfer notice) is in the
# call's language: the spec's phrases over the built-in ones (kubevox_api.phrases), never here.
# The texts below are for the language model, which replies in spec.language (see
# full_instructions).

END_CALL_DESCRIPTION = (
    "End the call once the caller has clearly said they are done (for example 'that's all, "
    "bye'). Do not use it when the intent is unclear or the caller asks to be transferred."
)


FAREWELL_TIMEOUT = 10.0
"""Seconds a goodbye (time limit, silence) may take: a voice that fails or hangs must not keep
the call open, so after this the call ends without it."""


def full_instructions(config: AgentRuntimeConfig, *, grounded: bool | None = None) -> str:
    """The system prompt: the spec's instructions, the reply language, and, for an agent with
    knowledge (``grounded``; default: it has knowledge bases), the rule that fenced
    knowledge is data, never instructions. Constant for the whole call, so providers' prompt
    caches keep it."""
    spec = config.spec
    parts = [spec.instructions]
    lang = spec.language
    if primary_language(lang) != "en":
        parts.append(f"Always reply in the language with the code '{lang}'.")
    if bool(config.knowledge_bases) if grounded is None else grounded:
        parts.append(KNOWLEDGE_RULES)
    if spec.web is not None and spec.web.metadata_keys:
        parts.append(CALL_DATA_RULES)
    return "\n\n".join(parts)


def phrases_of(config: AgentRuntimeConfig) -> ResolvedPhrases:
    """What the agent says by itself, in its language: spec.phrases over the built-in ones."""
    return phrases_for(config.spec.language, config.spec.phrases)


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
        refusal=phrases_of(config).guard_refusal,
        language=text_language(spec.language),
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
        call_data: Mapping[str, str] | None = None,
        recording: CallRecording | None = None,
    ) -> None:
        self._config = config
        self._recording = recording
        self._call_data = dict(call_data or {})  # from the caller's web page (call_data.py)
        self._record = record
        self._controls = controls
        self._grounding = grounding
        self._guard = guard_for(config) if grounding is not None else None
        self.phrases = phrases_of(config)
        self._history = HistoryWindow(history_budget(config.spec), greeting=config.spec.greeting)
        self._timer: asyncio.Task[None] | None = None
        self._silence_task: asyncio.Task[None] | None = None
        self._notice_task: asyncio.Task[None] | None = None
        self._prompted = False  # said the silence prompt since the caller last spoke
        self.farewell_timeout = FAREWELL_TIMEOUT
        super().__init__(
            instructions=full_instructions(config, grounded=grounding is not None),
            tools=self._spec_tools(),
        )

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
        await context.session.say(self.phrases.transfer_notice, allow_interruptions=False)
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
        if self._recording is not None:
            self._notice_task = asyncio.create_task(
                self._recording_notice(self._recording), name="kubevox.recording_notice"
            )
        else:
            self._greet()
        self._timer = asyncio.create_task(self._time_limit(), name="kubevox.call_time_limit")
        self.session.on("user_state_changed", self._on_user_state)
        self.session.on("conversation_item_added", self._on_item)

    def _greet(self) -> None:
        if greeting := self._config.spec.greeting:
            self.session.say(greeting)

    async def on_exit(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._notice_task is not None:
            self._notice_task.cancel()
        self.session.off("user_state_changed", self._on_user_state)
        self.session.off("conversation_item_added", self._on_item)

    # --- the recording's notice, and the caller's consent, before the greeting --------------

    async def _recording_notice(self, recording: CallRecording) -> None:
        spec = recording.spec
        try:
            if spec.consent == "notice":
                recording.settle(Consent("notice"))
                await recording.start(self.session)  # the notice itself is recorded
                await self.session.say(spec.notice, allow_interruptions=False)
            else:
                question = recording.ask()
                await self.session.say(spec.notice, allow_interruptions=False)
                consent = await question.wait(spec.answer_timeout_seconds)
                recording.settle(consent)
                if consent.recorded:
                    await recording.start(self.session)
        except RuntimeError:
            return  # the session is closing already
        self._greet()

    def _awaiting_consent(self) -> bool:
        question = self._recording.question if self._recording is not None else None
        return question is not None and question.open

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        if self._awaiting_consent() and self._recording and self._recording.question:
            # The answer to the notice is for kubevox, not the conversation: no reply, and it
            # stays out of the language model's history.
            self._recording.question.heard(new_message.text_content or "")
            raise StopResponse()

    # --- a silent caller: livekit marks them "away" after silenceTimeoutSeconds -------------

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self._prompted = False
        elif ev.new_state == "away" and self._silence_task is None:
            self._silence_task = asyncio.create_task(self._on_silence(), name="kubevox.silence")

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "user":
            # A typed or transcribed turn: the caller is back (livekit only sees speech).
            self._prompted = False
            self.session.reset_away_timer()

    async def _on_silence(self) -> None:
        try:
            if self._prompted:
                log.info("caller silent after the prompt", extra={"call_id": self._record.call_id})
                await self.hang_up(self.phrases.silence_goodbye, "silence_timeout")
                return
            self._prompted = True
            # Back to "listening": livekit's timer runs again from the end of the prompt, and
            # a second "away" ends the call.
            self.session.reset_away_timer()
            self.session.say(self.phrases.silence_prompt)
        except RuntimeError:
            pass  # the session is closing already
        finally:
            self._silence_task = None

    async def _time_limit(self) -> None:
        await asyncio.sleep(self._config.spec.max_call_duration_seconds)
        log.info("call reached maxCallDurationSeconds", extra={"call_id": self._record.call_id})
        await self.hang_up(self.phrases.time_limit_goodbye, "max_duration")

    async def hang_up(self, farewell: str, outcome: str) -> None:
        """Say ``farewell`` and end the call, whatever speaking does: if the goodbye raises or
        takes longer than ``farewell_timeout``, the call ends without it."""
        self._record.set_outcome(outcome)
        drain = True
        try:
            async with asyncio.timeout(self.farewell_timeout):
                await self._say_last(farewell)
        except Exception as e:  # TimeoutError included: the voice hangs
            log.warning(
                "the goodbye failed; ending the call without it",
                extra={"call_id": self._record.call_id, "outcome": outcome, "error": repr(e)},
            )
            drain = False  # drop the speech that failed, do not wait for it
        self.session.shutdown(drain=drain)

    async def _say_last(self, text: str) -> None:
        # force: the speech in progress may be one the caller may not interrupt.
        with contextlib.suppress(RuntimeError):  # nothing to interrupt
            await self.session.interrupt(force=True)
        await self.session.say(text, allow_interruptions=False)

    # --- the LLM node: grounding in, apology out ----------------------------------------------

    async def llm_node(
        self,
        chat_ctx: llm.ChatContext,
        tools: list[Tool],
        model_settings: ModelSettings,
    ) -> AsyncIterator[llm.ChatChunk | str | Any]:
        if self._awaiting_consent():
            return  # a preemptive reply to the consent answer: the model never sees it
        # Long calls: the prompt shows the instructions, the greeting and the newest turns only.
        chat_ctx = self._history(chat_ctx)
        question, passages = None, []
        if self._grounding is not None:
            start = time.perf_counter()
            question, chunks = await self._grounding.context_for(chat_ctx)
            metrics.retrieval_wait.labels(self._config.name, self._config.namespace).observe(
                time.perf_counter() - start
            )
            chat_ctx = with_context(chat_ctx, chunks)
            passages = [c.text for c in chunks]
        chat_ctx = with_call_data(chat_ctx, self._call_data)
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
                yield self.phrases.apology
