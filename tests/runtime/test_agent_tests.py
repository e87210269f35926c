"""Conversation tests (VoiceAgentTest): what each expectation checks, the judge's verdicts, and
a suite run against the real Agent in text mode, its LLM and judge served by local
OpenAI-compatible servers."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from kubevox_api import ResolvedKnowledgeBase, phrases_for
from kubevox_api.voiceagenttest import Expectations, VoiceAgentTest

from agent_runtime.agent_tests.audio import audible, inaudible
from agent_runtime.agent_tests.expectations import Judges, ObservedTurn, Passage, missed
from agent_runtime.agent_tests.judge import build_judge, parse_verdict
from agent_runtime.agent_tests.report import as_json, table
from agent_runtime.agent_tests.runner import CaseResult, TextRunner
from agent_runtime.errors import ConfigError
from agent_runtime.grounding import Retriever
from tests.support.calls import CLINIC_KB, llm_spec
from tests.support.knowledge_stub import KeywordStore
from tests.support.runtime import make_config
from tests.support.servers.openai_server import OpenAIServer, Reply
from tests.support.voice import answer_from_context, grounded_turn

HOURS = "The clinic is open Monday to Friday from 8 am to 6 pm."
PARKING = "Free parking is behind the building, entrance on Elm Street."
REFUSAL = phrases_for("en").guard_refusal
JUDGES = Judges(refusal=REFUSAL)


def expect(**fields: Any) -> Expectations:
    return Expectations.model_validate(fields)


def turn(reply: str, **observed: Any) -> ObservedTurn:
    return ObservedTurn("When are you open?", reply, **observed)


# --- expectations -------------------------------------------------------------------------


def test_a_reply_meeting_every_expectation_misses_nothing() -> None:
    wanted = expect(
        contains=["8 AM"],
        notContains=["sunday"],
        groundedIn=["hours"],
        refuses=False,
        notCalls=["end_call"],
        maxLatencyMs=2000,
    )
    observed = turn(
        "We are open Monday to Friday from 8 am to 6 pm.",
        passages=(Passage("hours", HOURS), Passage("parking", PARKING)),
        latency_ms=900,
    )
    assert missed(wanted, observed, JUDGES) == []


def test_each_missed_expectation_is_named() -> None:
    wanted = expect(
        contains=["9 am"],
        notContains=["6 PM"],
        refuses=True,
        calls=["transfer_to_human"],
        notCalls=["end_call"],
        maxLatencyMs=500,
    )
    observed = turn("We are open from 8 am to 6 pm.", tools=("end_call",), latency_ms=1234)
    assert missed(wanted, observed, JUDGES) == [
        "contains '9 am': not in the reply",
        "notContains '6 PM': in the reply",
        f"refuses: the reply is not the agent's refusal {REFUSAL!r}",
        "calls transfer_to_human: not called",
        "notCalls end_call: called",
        "maxLatencyMs 500: took 1234 ms",
    ]
    assert missed(expect(refuses=False), turn(REFUSAL), JUDGES) == [
        "refuses false: the agent refused"
    ]
    assert missed(expect(refuses=True), turn(REFUSAL), JUDGES) == []


def test_grounded_in_needs_the_source_retrieved_and_every_fact_supported() -> None:
    hours = (Passage("hours", HOURS),)
    invented = "We are open Monday to Friday from 8 am to 9 pm."
    assert missed(expect(groundedIn=["hours"]), turn(invented, passages=hours), JUDGES) == [
        f"groundedIn: not supported by the passages retrieved: {invented!r}",
        "groundedIn 'hours': no sentence of the reply is supported by it",
    ]
    # One true sentence does not cover an invented one next to it.
    mixed = f"{HOURS} Parking costs 5 dollars."
    assert missed(expect(groundedIn=["hours"]), turn(mixed, passages=hours), JUDGES) == [
        "groundedIn: not supported by the passages retrieved: 'Parking costs 5 dollars.'"
    ]
    assert missed(expect(groundedIn=["hours", "parking"]), turn(HOURS, passages=hours), JUDGES) == [
        "groundedIn 'parking': none of its passages was retrieved"
    ]
    assert missed(expect(groundedIn=["hours"]), turn(REFUSAL, passages=hours), JUDGES) == [
        "groundedIn 'hours': the reply states nothing to ground"
    ]


def test_text_is_compared_as_a_transcriber_may_write_it() -> None:
    heard = turn("On Saturdays, from 9 a.m. to 12:30 p.m.; parking: 4.5 dollars.")
    assert missed(expect(contains=["9 am", "12:30 pm", "4.5 DOLLARS"]), heard, JUDGES) == []
    assert missed(expect(notContains=["45"]), heard, JUDGES) == []  # 4.5 stays 4.5


def test_an_audio_run_checks_what_a_caller_hears_only() -> None:
    wanted = expect(contains=["8 am"], groundedIn=["hours"], calls=["end_call"], maxLatencyMs=900)
    assert inaudible(wanted) == ["groundedIn", "calls"]
    heard = audible(wanted)
    assert (heard.contains, heard.max_latency_ms) == (["8 am"], 900)
    assert (heard.grounded_in, heard.calls, heard.not_calls) == ([], [], [])


# --- the judge ----------------------------------------------------------------------------


def test_only_a_verdict_passes_a_rubric() -> None:
    ok = parse_verdict('```json\n{"verdict": "pass", "reason": "Gives the hours."}\n```')
    assert (ok.passed, ok.reason) == (True, "Gives the hours.")
    bad = parse_verdict('{"verdict": "fail", "reason": "Invents Sunday hours."}')
    assert (bad.passed, bad.reason) == (False, "Invents Sunday hours.")
    for text in ("Looks good to me!", '{"verdict": "maybe"}', "{not json}"):
        verdict = parse_verdict(text)
        assert not verdict.passed
        assert verdict.reason.startswith("the judge gave no verdict: ")


def test_a_rubric_needs_a_judge_able_to_judge() -> None:
    local = make_config({"llm": {"provider": "local", "baseURL": None, "model": None}})
    suite = VoiceAgentTest.model_validate(
        {"spec": {"agentRef": "front-desk", "cases": [{"name": "a", "turns": [{"say": "Hi"}]}]}}
    ).spec
    assert build_judge(suite, local) is None  # no rubric, no judge
    judged = suite.model_copy(update={"cases": [suite.cases[0].model_copy(update={"rubric": "x"})]})
    with pytest.raises(ConfigError, match=r"spec\.llm: provider local cannot judge a rubric"):
        build_judge(judged, local)


# --- a suite against the real Agent -------------------------------------------------------


def clinic_llm(body: dict[str, Any]) -> Reply:
    """Answers from the context kubevox injected, hangs up on a goodbye."""
    if body["messages"][-1]["role"] == "tool":
        return Reply(text="Thank you for calling, goodbye!")
    question, _ = grounded_turn(body)
    if "bye" in question.lower():
        return Reply(tool_call=("end_call", {}))
    return answer_from_context(body, unknown=REFUSAL)


def stand_in_judge(body: dict[str, Any]) -> Reply:
    """Passes a conversation that states the weekday hours (a stand-in: the test checks what
    the judge is asked and that its verdict and reason are reported, not its judgement)."""
    transcript = body["messages"][-1]["content"]
    if "8 am to 6 pm" in transcript:
        return Reply(text=json.dumps({"verdict": "pass", "reason": "It gives the hours."}))
    return Reply(text=json.dumps({"verdict": "fail", "reason": "No hours were given."}))


@pytest.fixture
async def llm() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("agent-llm") as server:
        server.responder = clinic_llm
        yield server


@pytest.fixture
async def judge() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("judge") as server:
        server.responder = stand_in_judge
        yield server


SUITE = {
    "cases": [
        {
            "name": "weekday-hours",
            "turns": [
                {
                    "say": "When are you open Monday to Friday?",
                    "expect": {"contains": ["8 am"], "groundedIn": ["hours"], "refuses": False},
                }
            ],
            "rubric": "The agent gives the weekday hours.",
        },
        {
            "name": "x-rays",
            "turns": [{"say": "Do you do x-rays?", "expect": {"refuses": True}}],
            "rubric": "The agent gives the weekday hours.",
        },
        {
            "name": "hangs-up",
            "turns": [
                {"say": "That's all, bye.", "expect": {"calls": ["end_call"]}},
                {"say": "Hello? One more thing."},
            ],
        },
    ]
}


async def test_a_suite_runs_against_the_real_agent(llm: OpenAIServer, judge: OpenAIServer) -> None:
    store = KeywordStore({"hours": HOURS, "parking": PARKING})

    def retriever(
        kb: ResolvedKnowledgeBase, env: Mapping[str, str], *, language: str | None = None
    ) -> Retriever:
        return store

    config = make_config(llm_spec(llm), knowledgeBases=CLINIC_KB)
    judge_spec = {"provider": "openai", "model": "judge-model", "baseURL": judge.base_url}
    suite = VoiceAgentTest.model_validate(
        {"spec": {"agentRef": "front-desk", "judge": judge_spec, **SUITE}}
    ).spec
    runner = TextRunner(
        config, suite, judge=build_judge(suite, config, env={}), retrievers=retriever, env={}
    )
    results = {r.name: r for r in await runner.run()}

    hours = results["weekday-hours"]
    assert hours.passed, table([hours])
    assert hours.turns[0].turn.reply == HOURS
    assert {p.source for p in hours.turns[0].turn.passages} == {"hours"}
    assert hours.verdict is not None
    assert hours.verdict.reason == "It gives the hours."

    x_rays = results["x-rays"]  # the refusal holds; the rubric does not
    assert x_rays.turns[0].failures == []
    assert x_rays.verdict is not None
    assert not x_rays.verdict.passed
    assert not x_rays.passed

    hung_up = results["hangs-up"]
    assert hung_up.turns[0].turn.tools == ("end_call",)
    assert hung_up.turns[0].failures == []
    assert hung_up.failures == ["turns[1]: the agent ended the call before it"]

    # The judge was asked with the rubric and the whole transcript, greeting included.
    asked = judge.chat_requests[0].body["messages"]
    assert asked[0]["role"] == "system"
    assert "JSON" in asked[0]["content"]
    verdict = judge.chat_requests[0].body["response_format"]["json_schema"]
    assert verdict["strict"] is True
    assert verdict["schema"]["properties"]["verdict"]["enum"] == ["pass", "fail"]
    assert "The agent gives the weekday hours." in asked[1]["content"]
    assert f"caller: When are you open Monday to Friday?\nagent: {HOURS}" in asked[1]["content"]
    assert len(judge.chat_requests) == 2  # one verdict per rubric, none for hangs-up

    report = table(list(results.values()))
    for row in (
        r"CASE\s+TURN\s+RESULT\s+LATENCY\s+DETAIL",
        r"weekday-hours\s+1\s+pass\s+\d+ ms\s+The clinic is open Monday to Friday.*",
        r"x-rays\s+rubric\s+FAIL\s+No hours were given\.",
        r"hangs-up\s+case\s+FAIL\s+turns\[1\]: the agent ended the call before it",
        r"3 cases: 1 passed, 2 failed",
    ):
        assert re.search(f"^{row}$", report, re.M), (row, report)
    assert as_json([hours])[0]["turns"][0]["sources"] == ["hours"]


def test_a_failed_case_is_never_reported_as_passed() -> None:
    broken = CaseResult("broken", failures=["error: RuntimeError('boom')"])
    assert not broken.passed
    assert re.search(r"^broken\s+case\s+FAIL\s+error: RuntimeError", table([broken]), re.M)
