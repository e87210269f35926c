"""Long calls stay bounded: the prompt at turn 200, a time limit whose goodbye fails, and a
caller who says nothing. Text sessions of the real Agent, the LLM served by the local
OpenAI-compatible server, the voice by the real cartesia plugin against a local Cartesia
server that fails or hangs."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest
from kubevox_api import phrases_for
from livekit.agents import llm
from livekit.agents.voice.events import ConversationItemAddedEvent

from agent_runtime.callrecord import CallRecord
from agent_runtime.controls import TextControls
from agent_runtime.history import HistoryBudget, HistoryWindow, history_budget, prompt_tokens
from agent_runtime.plugins.local_llm import LocalLLM, history_token_budget
from agent_runtime.providers import BuildContext, build_tts
from agent_runtime.session import Call, build_call
from tests.support.calls import CapturedOutput, llm_spec, make_call
from tests.support.runtime import make_config
from tests.support.servers.cartesia_server import CartesiaServer
from tests.support.servers.openai_server import OpenAIServer, Reply

GREETING = "Hello, Maple Street clinic, how can I help?"
PHRASES = phrases_for("en")  # the agent's language, make_config's default
INSTRUCTIONS = "You are the front desk of the Maple Street clinic. Be brief."
ANSWER = "Our clinic is open from eight in the morning to six in the evening on weekdays."


@pytest.fixture
async def model() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("long", default=Reply(text=ANSWER)) as s:
        yield s


def wire_tokens(messages: list[dict[str, Any]]) -> int:
    """The prompt's size as the runtime estimates it (four characters a token, plus the
    template's few tokens a message)."""
    return sum(len(str(m.get("content") or "")) // 4 + 1 + 4 for m in messages)


# --- (a) the conversation's history ---------------------------------------------------------


async def test_turn_200_prompt_stays_within_the_budget(model: OpenAIServer) -> None:
    call = make_call({**llm_spec(model), "maxHistoryTurns": 12, "maxHistoryTokens": 700})
    async with call.session as session:
        await session.start(call.agent)
        for turn in range(1, 201):
            result = await session.run(user_input=f"Question number {turn}: are you open today?")
        assert result.expect.next_event().is_message(role="assistant")
        said = result.expect[0].event().item.text_content
    assert said == ANSWER, "the session still answers at turn 200"
    sizes = [len(r.body["messages"]) for r in model.chat_requests]
    prompt = model.chat_requests[-1].body["messages"]
    users = [m["content"] for m in prompt if m["role"] == "user"]
    assert len(model.chat_requests) == 200
    assert len(users) <= 12
    assert users[-1] == "Question number 200: are you open today?"
    assert wire_tokens(prompt) <= 700
    # The instructions and the greeting stay; what goes are the oldest turns.
    assert prompt[0]["role"] == "system"
    assert prompt[0]["content"].startswith(INSTRUCTIONS)
    assert {"role": "assistant", "content": GREETING} in prompt
    assert max(sizes) < 40, "no prompt on the way grew past the budget"
    assert len(session.history.items) > 400, "the call's own history is complete"


def _conversation(turns: int, words: int = 12) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content=INSTRUCTIONS)
    ctx.add_message(role="assistant", content=GREETING)
    for i in range(turns):
        ctx.add_message(role="user", content=f"Turn {i}: " + "question " * words)
        ctx.add_message(role="assistant", content=f"Answer {i}: " + "answer " * words)
    return ctx


def test_the_local_models_budget_comes_from_its_window() -> None:
    cfg = make_config({"llm": {"provider": "local", "baseURL": None, "model": None}})
    budget = history_budget(cfg.spec)
    assert budget.max_turns == 40  # the spec's default
    assert budget.max_tokens == history_token_budget(None)
    # One slot of the 4,096-token window shared by 2, less the reply and the excerpts.
    assert 1000 < history_token_budget(None) < 2048 - 96 - 30
    # An openai primary with a local fallback: the smaller window bounds both.
    cfg = make_config(
        {"llm": {"fallbacks": [{"provider": "local"}], "maxTokens": 200}, "maxHistoryTurns": 9}
    )
    assert history_budget(cfg.spec) == HistoryBudget(9, history_token_budget(None))
    assert history_budget(make_config().spec) == HistoryBudget(40, None)


def test_turn_200_fits_the_local_models_slot() -> None:
    cfg = make_config({"llm": {"provider": "local", "baseURL": None, "model": None}})
    window = HistoryWindow(history_budget(cfg.spec))
    for turns in range(1, 201):
        shown = window(_conversation(turns))
    request = LocalLLM().request(shown)
    slot = 4096 // 2
    # Even counted at three characters a token (SmolLM2 needs more than four's estimate
    # for some text), prompt and reply fit the slot.
    chars = sum(len(m["content"]) + 16 for m in request["messages"])
    assert chars / 3 + request["max_tokens"] < slot
    assert request["messages"][0]["content"] == INSTRUCTIONS
    assert request["messages"][1]["content"] == GREETING
    assert request["messages"][-2]["content"].startswith("Turn 199:")


def test_a_cut_leaves_room_so_the_next_turns_share_their_prefix() -> None:
    window = HistoryWindow(HistoryBudget(max_turns=8), greeting=GREETING)
    ctx = _conversation(0)
    starts = []
    for n in range(40):  # one call: its items keep their ids from turn to turn
        ctx.add_message(role="user", content=f"Turn {n}")
        shown = window(ctx)
        users = [i for i in shown.items if i.type == "message" and i.role == "user"]
        assert len(users) <= 8
        starts.append(users[0].id)
        ctx.add_message(role="assistant", content=f"Answer {n}")
    # Each cut leaves 6 turns, so the shown conversation keeps its start for 3 turns in a row
    # (and llama.cpp its prompt cache) instead of moving at every turn.
    moves = sum(a != b for a, b in itertools.pairwise(starts))
    assert 0 < moves <= (40 - 8) // 3 + 1


def test_the_current_turn_stays_even_over_budget() -> None:
    ctx = _conversation(3, words=400)
    shown = HistoryWindow(HistoryBudget(max_turns=40, max_tokens=300))(ctx)
    users = [i.text_content for i in shown.items if i.type == "message" and i.role == "user"]
    assert len(users) == 1
    assert users[0].startswith("Turn 2:")  # type: ignore[union-attr]
    assert prompt_tokens(shown) > 300  # it is the model's to refuse, not ours to drop


def test_a_tool_call_and_its_output_stay_together() -> None:
    ctx = _conversation(5)
    ctx.add_message(role="user", content="Transfer me please.")
    ctx.items.append(llm.FunctionCall(call_id="c1", name="transfer_to_human", arguments="{}"))
    ctx.items.append(
        llm.FunctionCallOutput(call_id="c1", name="transfer_to_human", output="", is_error=False)
    )
    shown = HistoryWindow(HistoryBudget(max_turns=1))(ctx)
    assert [i.type for i in shown.items] == [
        "message",
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]


# --- (b) the call-duration limit with a voice that fails ------------------------------------


async def _voiced_call(
    model: OpenAIServer, voice: CartesiaServer, http: aiohttp.ClientSession
) -> Call:
    call = make_call({**llm_spec(model), "greeting": None})
    spec = call.agent._config.spec.model_copy(update={"max_call_duration_seconds": 1})
    call.agent._config = call.agent._config.model_copy(update={"spec": spec})
    cfg = make_config(
        {
            "tts": {
                "provider": "cartesia",
                "baseURL": voice.url,
                "credentials": {"secretKeyRef": {"name": "c", "key": "k"}},
            }
        }
    )
    # The real cartesia plugin speaks the call's audio, into a captured output.
    call.session._tts = build_tts(
        cfg.spec.tts,
        BuildContext(language="en", http_session=http),
        env={"CARTESIA_API_KEY": "key"},
    )
    call.session.output.audio = CapturedOutput()
    return call


@pytest.mark.parametrize("fail", ["error", "hang"])
async def test_the_time_limit_ends_the_call_when_the_goodbye_fails(
    model: OpenAIServer, fail: Literal["error", "hang"]
) -> None:
    async with CartesiaServer(fail=fail) as voice, aiohttp.ClientSession() as http:
        call = await _voiced_call(model, voice, http)
        call.agent.farewell_timeout = 3.0
        closed = asyncio.Event()
        call.session.on("close", lambda _ev: closed.set())
        start = time.monotonic()
        async with call.session as session:
            await session.start(call.agent)
            # A speech the caller may not interrupt is under way when the limit comes (like
            # the transfer notice), and the voice never finishes it.
            session.say("Please hold while I look that up.", allow_interruptions=False)
            await asyncio.wait_for(closed.wait(), 20)
            elapsed = time.monotonic() - start
    assert call.record.outcome == "max_duration"
    assert elapsed < 1 + 3 + 5, "the limit, the goodbye's timeout, and the close"
    said = [i.text_content for i in call.session.history.items if i.type == "message"]
    assert PHRASES.time_limit_goodbye not in said[:-1]  # never said twice; maybe not at all


# --- (c) a silent caller --------------------------------------------------------------------


def _silent_call(model: OpenAIServer, timeout: float) -> Call:
    cfg = make_config(llm_spec(model))
    # The schema's floor is 5 s; the mechanism is what is under test, not the floor.
    cfg = cfg.model_copy(
        update={"spec": cfg.spec.model_copy(update={"silence_timeout_seconds": timeout})}
    )
    record = CallRecord(call_id="c", room="r", agent=cfg.name, namespace=cfg.namespace)
    return build_call(
        cfg, record=record, controls=TextControls(), audio=False, env={}, silence_timeout=True
    )


def _said(call: Call) -> list[str]:
    return [
        i.text_content or ""
        for i in call.session.history.items
        if i.type == "message" and i.role == "assistant"
    ]


async def test_a_silent_caller_is_asked_once_then_the_call_ends(model: OpenAIServer) -> None:
    call = _silent_call(model, timeout=1.0)
    closed = asyncio.Event()
    call.session.on("close", lambda _ev: closed.set())
    start = time.monotonic()
    async with call.session as session:
        await session.start(call.agent)
        await asyncio.wait_for(closed.wait(), 15)
        said = _said(call)
    assert said == [GREETING, PHRASES.silence_prompt, PHRASES.silence_goodbye]
    assert call.record.outcome == "silence_timeout"
    assert 2.0 <= time.monotonic() - start < 10
    assert model.chat_requests == []  # no model call for any of it


async def test_a_caller_who_answers_the_prompt_keeps_the_call(model: OpenAIServer) -> None:
    call = _silent_call(model, timeout=1.0)
    prompts = asyncio.Queue[str]()

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.text_content == PHRASES.silence_prompt:
            prompts.put_nowait(ev.item.text_content)

    call.session.on("conversation_item_added", on_item)
    async with call.session as session:
        await session.start(call.agent)
        await asyncio.wait_for(prompts.get(), 10)
        result = await session.run(user_input="Yes, sorry, I'm here.")
        result.expect.next_event().is_message(role="assistant")
        # Silent again: asked again (the caller spoke since), not hung up on.
        await asyncio.wait_for(prompts.get(), 10)
        assert PHRASES.silence_goodbye not in _said(call)
        assert call.record.outcome is None
    assert call.record.outcome == "completed"


def test_silence_timeout_is_a_spec_field_with_bounds() -> None:
    assert make_config().spec.silence_timeout_seconds == 30
    with pytest.raises(ValueError, match="silenceTimeoutSeconds"):
        make_config({"silenceTimeoutSeconds": 2})
    with pytest.raises(ValueError, match="maxHistoryTurns"):
        make_config({"maxHistoryTurns": 0})
