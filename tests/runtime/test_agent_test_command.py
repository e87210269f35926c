"""``kubevox-agent test`` on the support agent's sample suite: the real command, its knowledge
base ingested into a real Redis and retrieved with the local embedder, the agent's language
model (and judge) a local OpenAI-compatible server answering from the context kubevox gave it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubevox_api import KnowledgeBase, VoiceAgent, render_runtime_config
from kubevox_api.runtime_config import config_hash
from kubevox_api.voiceagenttest import TestReport, VoiceAgentTest, suites_hash
from kubevox_devenv.knowledge import ingest_manifest
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.agent_tests.judge import INSTRUCTIONS
from tests.support.servers.openai_server import OpenAIServer, Reply
from tests.support.voice import answer_from_context

pytestmark = pytest.mark.redis

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "manifests" / "samples"
SUITE = SAMPLES / "tests" / "support-agent-tests.yaml"
NAMESPACE = "agent-tests"
UNKNOWN = "I'm sorry, I don't know that. I can transfer you to the front desk."


def stand_in(change: Callable[[str], str] = lambda s: s) -> Callable[[dict[str, Any]], Reply]:
    """The support agent's model: the knowledge-base sentence closest to the question, passed
    through ``change`` (a bad change); as the judge (the suite names none, so the agent's own
    model judges), it passes a conversation whose hours all come from the knowledge base."""

    def respond(body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        if messages[0]["content"] == INSTRUCTIONS:
            said = messages[-1]["content"]
            wrong = "7 am" in said
            verdict = {"verdict": "fail" if wrong else "pass", "reason": f"stand-in: {wrong=}"}
            return Reply(text=json.dumps(verdict))
        return Reply(text=change(answer_from_context(body, unknown=UNKNOWN).text))

    return respond


@pytest.fixture
async def llm() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("support-llm") as server:
        yield server


@pytest.fixture(scope="module")
def support_files(
    redis_server: RedisSearchServer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The support sample with what a laptop has: its inline source ingested into Redis (the
    ConfigMap and URL sources need the cluster and the web)."""
    agent, kb = yaml.safe_load_all((SAMPLES / "support-agent.yaml").read_text())
    kb["metadata"]["namespace"] = agent["metadata"]["namespace"] = NAMESPACE
    kb["spec"]["sources"] = [s for s in kb["spec"]["sources"] if "inline" in s]
    workdir = tmp_path_factory.mktemp("support")
    assert ingest_manifest(kb, redis_server.url, workdir)["chunks"] > 0
    path = workdir / "support-agent.yaml"
    path.write_text(yaml.safe_dump_all([agent, kb]))
    return path


async def kubevox_agent_test(
    files: Path, llm: OpenAIServer, redis_url: str, *extra: str
) -> tuple[int, str, str]:
    agent, kb = yaml.safe_load_all(await asyncio.to_thread(files.read_text))
    agent["spec"]["llm"] = {"provider": "openai", "model": "stand-in", "baseURL": llm.base_url}
    path = files.with_name(f"agent-{os.urandom(4).hex()}.yaml")
    await asyncio.to_thread(path.write_text, yaml.safe_dump_all([agent, kb]))
    return await run_test_command(redis_url, "-f", str(path), "-f", str(SUITE), *extra)


async def run_test_command(redis_url: str, *args: str) -> tuple[int, str, str]:
    # Async: the stand-in model is served by this test's event loop.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent_runtime",
        "test",
        *args,
        "--redis-url",
        redis_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_support_agents_suite_passes(
    support_files: Path, llm: OpenAIServer, redis_server: RedisSearchServer
) -> None:
    llm.responder = stand_in()
    code, out, err = await kubevox_agent_test(support_files, llm, redis_server.url)
    assert code == 0, out + err
    assert re.search(
        r"^saturday-hours\s+1\s+pass\s+\d+ ms\s+Northwind Clinic is open Monday to Friday",
        out,
        re.M,
    ), out
    assert re.search(r"^out-of-scope\s+rubric\s+pass\s+stand-in: wrong=False$", out, re.M), out
    assert out.rstrip().endswith("4 cases: 4 passed, 0 failed")
    assert "pass  two-questions" in err  # progress, case by case, on stderr


async def test_a_bad_change_fails_and_says_what(
    support_files: Path, llm: OpenAIServer, redis_server: RedisSearchServer
) -> None:
    llm.responder = stand_in(lambda reply: reply.replace("8 am", "7 am"))
    code, out, err = await kubevox_agent_test(
        support_files, llm, redis_server.url, "--output", "json"
    )
    assert code == 1, out + err
    results = {case["name"]: case for case in json.loads(out)}
    weekdays = results["two-questions"]
    assert not weekdays["passed"]
    first = weekdays["turns"][0]
    assert "contains '8 am': not in the reply" in first["failures"]
    assert first["sources"] == ["opening-hours"]
    assert weekdays["rubric"] == {"passed": False, "reason": "stand-in: wrong=True"}
    saturday = results["saturday-hours"]["turns"][0]  # the same sentence, now unsupported
    assert any(f.startswith("groundedIn: not supported") for f in saturday["failures"])
    # What the change did not touch still passes.
    assert results["sunday-closed"]["passed"]
    assert results["out-of-scope"]["passed"]


async def test_bad_files_are_refused_before_any_call(
    support_files: Path, llm: OpenAIServer, redis_server: RedisSearchServer
) -> None:
    code, _, err = await kubevox_agent_test(
        support_files, llm, redis_server.url, "--case", "no-such-case"
    )
    assert code == 2
    assert "--case: no case named 'no-such-case'" in err
    assert llm.chat_requests == []


async def test_the_operators_job_form_reports_what_it_ran_in_4_kib(
    support_files: Path, llm: OpenAIServer, redis_server: RedisSearchServer
) -> None:
    """As the operator's test Job runs it: the agent's rendered runtime config (--config), the
    suites alone in -f, and the compact report the operator reads (--report-file)."""
    agent, kb = yaml.safe_load_all(await asyncio.to_thread(support_files.read_text))
    agent["spec"]["llm"] = {"provider": "openai", "model": "stand-in", "baseURL": llm.base_url}
    config = render_runtime_config(
        VoiceAgent.model_validate(agent), {kb["metadata"]["name"]: KnowledgeBase.model_validate(kb)}
    )
    config_file = support_files.with_name("agent.json")
    await asyncio.to_thread(config_file.write_text, config.model_dump_json(by_alias=True))
    report_file = support_files.with_name("report.json")
    llm.responder = stand_in(lambda reply: reply.replace("8 am", "7 am"))
    code, out, err = await run_test_command(
        redis_server.url,
        "--config",
        str(config_file),
        "-f",
        str(SUITE),
        "--output",
        "json",
        "--report-file",
        str(report_file),
    )
    assert code == 1, out + err
    text = await asyncio.to_thread(report_file.read_text)
    assert len(text.encode()) <= 4096
    report = TestReport.model_validate_json(text)
    suites = list(yaml.safe_load_all(SUITE.read_text()))
    assert report.config_hash == config_hash(config)
    assert report.suites_hash == suites_hash([VoiceAgentTest.model_validate(d) for d in suites])
    outcomes = {c.name: c for c in report.cases}
    assert {c.suite for c in report.cases} == {suites[0]["metadata"]["name"]}
    assert outcomes["sunday-closed"].passed
    assert not outcomes["two-questions"].passed
    assert "turn 1: contains '8 am': not in the reply" in outcomes["two-questions"].reasons
    assert "rubric: stand-in: wrong=True" in outcomes["two-questions"].reasons
