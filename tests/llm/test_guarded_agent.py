"""The grounding guard inside the real Agent, in text-mode sessions: what the spec's
groundingGuard asks for is what the caller gets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubevox_api import phrases_for

from agent_runtime.agent import guard_for
from agent_runtime.grounding import Grounding, KnowledgeSource
from tests.support.calls import CLINIC_KB as KB
from tests.support.calls import FRENCH_SPEC, llm_spec, make_call, text_of
from tests.support.knowledge_stub import KeywordStore
from tests.support.runtime import make_config
from tests.support.servers.openai_server import OpenAIServer, Reply

FACTS = {
    "pharmacy": "The pharmacy opens on Saturdays at 9 am and closes at noon.",
    "parking": "Free parking is available behind the building, entrance on Elm Street.",
}


@pytest.fixture
async def llm_server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("inventive") as s:
        yield s


def _grounding() -> Grounding:
    return Grounding(
        [KnowledgeSource("clinic-facts", KeywordStore(FACTS), top_k=2)],
        agent="front-desk",
        namespace="clinic",
    )


def _spec(server: OpenAIServer, mode: str, fallback: str = "quote") -> dict[str, Any]:
    return {
        **llm_spec(server),
        "knowledgeBases": [{"name": "clinic-facts"}],
        "groundingGuard": {"mode": mode, "fallback": fallback},
    }


async def _answer(
    server: OpenAIServer,
    mode: str,
    question: str,
    fallback: str = "quote",
    extra: dict[str, Any] | None = None,
) -> str:
    call = make_call({**_spec(server, mode, fallback), **(extra or {})}, grounding=_grounding())
    call.agent._config = call.agent._config.model_copy(
        update={"knowledge_bases": make_config(knowledge_bases=KB).knowledge_bases}
    )
    call.agent._guard = guard_for(call.agent._config)
    async with call.session as session:
        await session.start(call.agent)
        result = await session.run(user_input=question)
        return text_of(result.expect.contains_message(role="assistant"))


async def test_invented_answer_is_replaced_when_the_guard_is_enforced(
    llm_server: OpenAIServer,
) -> None:
    llm_server.default = Reply(text="The pharmacy opens on Saturdays at 10 am.")
    said = await _answer(llm_server, "enforce", "When does the pharmacy open on Saturday?")
    assert said == FACTS["pharmacy"]
    # The model did receive the knowledge: the guard judged its answer against it.
    # (as data in the caller's message, never as system text)
    caller = llm_server.chat_requests[-1].body["messages"][-1]
    assert caller["role"] == "user"
    assert "9 am" in str(caller["content"])


async def test_supported_answer_passes_the_guard(llm_server: OpenAIServer) -> None:
    llm_server.default = Reply(text="The pharmacy opens on Saturdays at 9 am.")
    said = await _answer(llm_server, "enforce", "When does the pharmacy open on Saturday?")
    assert said == "The pharmacy opens on Saturdays at 9 am."


async def test_refusal_when_nothing_matches(llm_server: OpenAIServer) -> None:
    llm_server.default = Reply(text="Yes, dental implants cost 900 euros.")
    said = await _answer(llm_server, "enforce", "Do you do dental implants?", fallback="refuse")
    assert said == "I'm sorry, I don't have that information."


async def test_the_refusal_is_in_the_agents_language(llm_server: OpenAIServer) -> None:
    llm_server.default = Reply(text="Yes, dental implants cost 900 euros.")
    said = await _answer(
        llm_server, "enforce", "Do you do dental implants?", fallback="refuse", extra=FRENCH_SPEC
    )
    assert (
        said
        == phrases_for("fr").guard_refusal
        == ("Je regrette, je ne dispose pas de cette information.")
    )


async def test_the_spec_s_refusal_wins(llm_server: OpenAIServer) -> None:
    llm_server.default = Reply(text="Yes, dental implants cost 900 euros.")
    mine = {"phrases": {"guardRefusal": "Sorry, the front desk can tell you that."}}
    said = await _answer(
        llm_server, "enforce", "Do you do dental implants?", fallback="refuse", extra=mine
    )
    assert said == "Sorry, the front desk can tell you that."


async def test_auto_mode_leaves_a_cloud_model_alone(llm_server: OpenAIServer) -> None:
    llm_server.default = Reply(text="The pharmacy opens on Saturdays at 10 am.")
    said = await _answer(llm_server, "auto", "When does the pharmacy open on Saturday?")
    assert said == "The pharmacy opens on Saturdays at 10 am."


def test_guard_modes_follow_the_spec() -> None:
    with_kb = {"knowledge_bases": make_config(knowledge_bases=KB).knowledge_bases}
    local = make_config({"llm": {"provider": "local", "baseURL": None, "model": None}})
    assert guard_for(local.model_copy(update=with_kb)) is not None
    assert guard_for(local) is None  # no knowledge base, nothing to check against
    cloud = make_config()
    assert guard_for(cloud.model_copy(update=with_kb)) is None
    enforced = make_config({"groundingGuard": {"mode": "enforce"}})
    assert guard_for(enforced.model_copy(update=with_kb)) is not None
