"""Text-mode sessions of the real Agent (livekit's session.run / RunResult), with the LLM
served by local OpenAI-compatible servers."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from kubevox_api import phrases_for
from kubevox_devenv.procs import free_port

from agent_runtime import metrics
from agent_runtime.controls import TextControls
from tests.support.calls import (
    FRENCH_SPEC,
    TRANSFER_SPEC,
    clinic_grounding,
    llm_spec,
    make_call,
    session_closed,
    text_of,
)
from tests.support.knowledge_stub import KeywordStore, RedisDownStore
from tests.support.servers.openai_server import OpenAIServer, Reply


@pytest.fixture
async def primary() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("primary") as s:
        yield s


@pytest.fixture
async def secondary() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("secondary") as s:
        yield s


def sample(name: str, **labels: str) -> float:
    """The sum of ``name``'s samples with these labels (and any configuration)."""
    wanted = {"agent": "front-desk", "namespace": "clinic", **labels}
    return sum(
        s.value
        for family in metrics.scrape_registry().collect()
        for s in family.samples
        if s.name == name and wanted.items() <= s.labels.items()
    )


async def test_greeting_then_answer(primary: OpenAIServer) -> None:
    primary.script = [Reply(text="We open at nine.")]
    call = make_call(llm_spec(primary))
    async with call.session as session:
        greet = await session.start(call.agent, capture_run=True)
        assert text_of(greet.expect.contains_message(role="assistant")) == (
            "Hello, Maple Street clinic, how can I help?"
        )
        result = await session.run(user_input="When do you open?")
        assert text_of(result.expect.next_event().is_message(role="assistant")) == (
            "We open at nine."
        )
        result.expect.no_more_events()
    body = primary.chat_requests[0].body
    assert body["model"] == "primary-model"
    assert body["messages"][0]["role"] == "system"
    assert "Maple Street clinic" in body["messages"][0]["content"]


async def test_grounding_is_injected_for_the_user_turn(primary: OpenAIServer) -> None:
    store = KeywordStore(
        {
            "hours.md": "The pharmacy opens on Saturdays at 9 am.",
            "parking.md": "Parking is free behind the building.",
        }
    )
    primary.script = [Reply(text="On Saturdays the pharmacy opens at 9 am.")]
    call = make_call(llm_spec(primary), grounding=clinic_grounding(store))
    async with call.session as session:
        await session.start(call.agent)
        result = await session.run(user_input="When does the pharmacy open on Saturdays?")
        result.expect.next_event().is_message(role="assistant")
    assert store.queries == ["When does the pharmacy open on Saturdays?"]
    messages = primary.chat_requests[-1].body["messages"]
    # Knowledge is data: fenced in the caller's message, never system text.
    grounded = messages[-1]
    assert grounded["role"] == "user"
    assert "\nThe pharmacy opens on Saturdays at 9 am." in grounded["content"]
    assert grounded["content"].endswith("When does the pharmacy open on Saturdays?")
    assert all("pharmacy opens" not in m["content"] for m in messages if m["role"] == "system")
    # grounding is per turn: the session's own history does not keep it
    assert all("excerpts from the knowledge base" not in str(i) for i in session.history.items)


async def test_store_down_answers_ungrounded_and_counts_once(
    primary: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisDownStore(free_port())
    primary.default = Reply(text="I can help with that.")
    before = sample(metrics.RETRIEVAL_FAILURES)
    call = make_call(llm_spec(primary), grounding=clinic_grounding(store))
    with caplog.at_level("WARNING", logger="kubevox.grounding"):
        async with call.session as session:
            await session.start(call.agent)
            for q in ("Are you open today?", "Do you take walk-ins?", "Where do I park?"):
                result = await session.run(user_input=q)
                assert text_of(result.expect.next_event().is_message(role="assistant")) == (
                    "I can help with that."
                )
    assert store.calls == 3
    assert sample(metrics.RETRIEVAL_FAILURES) - before == 1
    outage_logs = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(outage_logs) == 1
    assert all(
        m["role"] != "system" or "knowledge base" not in m["content"]
        for m in primary.chat_requests[-1].body["messages"][1:]
    )


async def test_end_call_tool_closes_the_session(primary: OpenAIServer) -> None:
    primary.script = [Reply(tool_call=("end_call", {})), Reply(text="Goodbye!")]
    call = make_call(llm_spec(primary))
    async with call.session as session:
        await session.start(call.agent)
        closed = session_closed(session)
        result = await session.run(user_input="That's all, thanks, bye.")
        result.expect.next_event().is_function_call(name="end_call")
        result.expect.next_event().is_function_call_output()
        assert text_of(result.expect.next_event().is_message(role="assistant")) == "Goodbye!"
        await closed
    assert call.record.outcome == "agent_ended"
    tool_names = [t["function"]["name"] for t in primary.chat_requests[0].body["tools"]]
    assert tool_names == ["end_call"]  # no transfer tool without spec.tools.transfer


async def test_transfer_to_human_on_a_phone_line(primary: OpenAIServer) -> None:
    primary.script = [Reply(tool_call=("transfer_to_human", {}))]
    controls = TextControls(pretend_phone=True)
    call = make_call({**llm_spec(primary), **TRANSFER_SPEC}, controls=controls)
    async with call.session as session:
        await session.start(call.agent)
        closed = session_closed(session)
        result = await session.run(user_input="Let me talk to a person.")
        result.expect.contains_function_call(name="transfer_to_human")
        assert phrases_for("en").transfer_notice in " ".join(
            i.text_content or "" for i in session.history.items if i.type == "message"
        )
        await closed
    assert controls.transfers == ["tel:+15557654321"]
    assert call.record.outcome == "transferred"


async def test_transfer_refused_for_a_web_caller(primary: OpenAIServer) -> None:
    primary.script = [
        Reply(tool_call=("transfer_to_human", {})),
        Reply(text="I can take a message instead."),
    ]
    controls = TextControls(pretend_phone=False)
    call = make_call({**llm_spec(primary), **TRANSFER_SPEC}, controls=controls)
    async with call.session as session:
        await session.start(call.agent)
        result = await session.run(user_input="Let me talk to a person.")
        result.expect.next_event().is_function_call(name="transfer_to_human")
        out = result.expect.next_event().is_function_call_output()
        assert "only possible for phone callers" in out.event().item.output
    assert controls.transfers == []
    assert call.record.outcome == "completed"  # the call went on normally


async def test_fallback_when_primary_returns_500(
    primary: OpenAIServer, secondary: OpenAIServer
) -> None:
    primary.default = Reply(status=500)
    secondary.default = Reply(text="Answer from the fallback.")
    before = sample(metrics.LLM_FALLBACKS)
    errors_before = sample(metrics.PROVIDER_ERRORS, provider="openai", kind="http_500")
    call = make_call(llm_spec(primary, fallbacks=[secondary]))
    async with call.session as session:
        await session.start(call.agent)
        result = await session.run(user_input="Hello?")
        assert text_of(result.expect.next_event().is_message(role="assistant")) == (
            "Answer from the fallback."
        )
    assert len(primary.chat_requests) >= 1
    assert secondary.chat_requests[0].body["model"] == "fallback-0"
    assert sample(metrics.LLM_FALLBACKS) - before == 1
    assert sample(metrics.PROVIDER_ERRORS, provider="openai", kind="http_500") > errors_before


async def test_fallback_when_primary_hangs(primary: OpenAIServer, secondary: OpenAIServer) -> None:
    primary.default = Reply(hang_seconds=5)
    secondary.default = Reply(text="Fallback after a timeout.")
    call = make_call(llm_spec(primary, timeout=0.5, fallbacks=[secondary]))
    async with call.session as session:
        await session.start(call.agent)
        result = await session.run(user_input="Hello?")
        assert text_of(result.expect.next_event().is_message(role="assistant")) == (
            "Fallback after a timeout."
        )
    assert sample(metrics.PROVIDER_ERRORS, provider="openai", kind="timeout") >= 1


@pytest.mark.parametrize("french", [False, True], ids=["en", "fr-FR"])
async def test_apology_when_every_llm_fails(
    primary: OpenAIServer, secondary: OpenAIServer, french: bool
) -> None:
    primary.default = Reply(status=500)
    secondary.default = Reply(status=503)
    call = make_call(
        {**llm_spec(primary, fallbacks=[secondary]), **(FRENCH_SPEC if french else {})}
    )
    digest = str(call.record.config_hash)
    apologies = sample(metrics.APOLOGIES_TOTAL, config_hash=digest)
    turns = sample(metrics.TURNS_TOTAL, config_hash=digest)
    async with call.session as session:
        await session.start(call.agent)
        result = await session.run(user_input="Bonjour ?" if french else "Hello?")
        said = text_of(result.expect.next_event().is_message(role="assistant"))
    assert said == phrases_for("fr" if french else "en").apology
    # The apology rate a canary is judged on: the greeting, then the apology.
    assert sample(metrics.APOLOGIES_TOTAL, config_hash=digest) - apologies == 1
    assert sample(metrics.TURNS_TOTAL, config_hash=digest) - turns == 2
    if french:
        assert said.startswith("Veuillez m'excuser")


async def test_call_record_logged_once_with_turns(
    primary: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    primary.default = Reply(text="Sure.")
    before = sample(metrics.CALLS_TOTAL, outcome="completed")
    call = make_call({**llm_spec(primary), "logTranscripts": True})
    with caplog.at_level("INFO", logger="kubevox.call"):
        async with call.session as session:
            await session.start(call.agent)
            await session.run(user_input="One.")
            await session.run(user_input="Two.")
    records = [r for r in caplog.records if r.getMessage() == "call ended"]
    assert len(records) == 1
    rec = records[0].call  # type: ignore[attr-defined]
    assert rec["call_id"] == "call-1"
    assert rec["room"] == "room-1"
    assert rec["worker"] == socket.gethostname()  # no POD_NAME outside a pod
    assert rec["outcome"] == "completed"
    assert rec["turns"] == 3  # greeting + two answers
    assert [t["text"] for t in rec["transcript"] if t["role"] == "user"] == ["One.", "Two."]
    assert rec["latencies"][1]["llm_ttft"] is not None
    assert rec["started_at"] <= rec["ended_at"]  # ISO 8601, UTC
    assert rec["ended_at"].endswith("+00:00")
    # What the language model consumed, as the server reported it (10 in, 5 out a request).
    [used] = [u for u in rec["usage"] if u["type"] == "llm_usage"]
    assert (used["model"], used["input_tokens"], used["output_tokens"]) == ("primary-model", 20, 10)
    assert json.dumps(rec)  # serialisable as one JSON record
    assert sample(metrics.CALLS_TOTAL, outcome="completed") - before == 1
    # Counted for its configuration: a canary's calls are told apart by this label.
    digest = call.record.config_hash
    assert digest
    assert sample(metrics.CALLS_TOTAL, outcome="completed", config_hash=digest) >= 1


PERSONAL = (
    "I'm Jane Doe, jane.doe@example.com, call me on +1 415 555 0199; "
    "my card is 4111 1111 1111 1111."
)
PERSONAL_VALUES = ("Jane Doe", "jane.doe@example.com", "+1 415 555 0199", "4111 1111 1111 1111")


@pytest.mark.parametrize(
    ("redact", "kept"),
    [
        (None, []),  # the default: every kind
        (["emails"], ["Jane Doe", "+1 415 555 0199", "4111 1111 1111 1111"]),
        (["names"], ["jane.doe@example.com", "+1 415 555 0199", "4111 1111 1111 1111"]),
        ([], list(PERSONAL_VALUES)),
    ],
    ids=["default", "emails-only", "names-only", "none"],
)
async def test_the_call_record_masks_personal_data(
    primary: OpenAIServer,
    caplog: pytest.LogCaptureFixture,
    redact: list[str] | None,
    kept: list[str],
) -> None:
    """What the caller says reaches the model as said, and the log record without what the
    agent's spec.redact names."""
    primary.default = Reply(text="Thank you.")
    spec = {**llm_spec(primary), "logTranscripts": True}
    if redact is not None:
        spec["redact"] = redact
    call = make_call(spec)
    with caplog.at_level("INFO", logger="kubevox.call"):
        async with call.session as session:
            await session.start(call.agent)
            await session.run(user_input=PERSONAL)
    [record] = [r.call for r in caplog.records if r.getMessage() == "call ended"]  # type: ignore[attr-defined]
    logged = json.dumps(record)
    for value in PERSONAL_VALUES:
        assert (value in logged) == (value in kept), value
    if redact is None:
        said = [t["text"] for t in record["transcript"] if t["role"] == "user"]
        assert said == ["I'm [name], [email], call me on [phone]; my card is [card]."]
    assert PERSONAL in str(primary.chat_requests[-1].body["messages"])  # the model heard it all


@pytest.mark.parametrize("french", [False, True], ids=["en", "fr-FR"])
async def test_the_call_ends_politely_at_max_call_duration(
    primary: OpenAIServer, french: bool
) -> None:
    call = make_call({**llm_spec(primary), **(FRENCH_SPEC if french else {})})
    # The schema's floor is 30 s; the timer is what is under test, not the floor.
    spec = call.agent._config.spec.model_copy(update={"max_call_duration_seconds": 1})
    call.agent._config = call.agent._config.model_copy(update={"spec": spec})
    closed = asyncio.Event()
    call.session.on("close", lambda _ev: closed.set())
    async with call.session as session:
        await session.start(call.agent)
        await asyncio.wait_for(closed.wait(), 20)
        said = [i.text_content for i in session.history.items if i.type == "message"]
    assert said[-1] == phrases_for("fr" if french else "en").time_limit_goodbye
    if french:
        assert str(said[-1]).endswith("Merci de votre appel, au revoir.")
    assert call.record.outcome == "max_duration"


def test_a_configurations_call_counters_exist_at_zero_before_its_first_call() -> None:
    """Prometheus' increase() cannot count a series' first sample: a canary's first error (or
    transfer, or apology) must find its series already at 0, or its rates read too low."""
    metrics.start_call_series("front-desk", "clinic", "feedface")
    registry = metrics.scrape_registry()
    labels = {"agent": "front-desk", "namespace": "clinic", "config_hash": "feedface"}
    for outcome in ("error", "transferred", "completed"):
        value = registry.get_sample_value(metrics.CALLS_TOTAL, {**labels, "outcome": outcome})
        assert value == 0.0, outcome
    assert registry.get_sample_value(metrics.APOLOGIES_TOTAL, labels) == 0.0
    assert registry.get_sample_value(metrics.TURNS_TOTAL, labels) == 0.0
