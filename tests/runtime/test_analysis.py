"""The analysis of each call (spec.analysis, agent_runtime/analysis), against real Redis (the
agent's outbox), a real HTTP receiver (the webhook sink, signatures checked) and a local server
speaking OpenAI's protocol as the language model: a call's ``call.ended`` in the outbox comes out
as ``call.analyzed`` at every sink, once, analysed from the transcript no sink gets; a model
that fails, hangs or answers nonsense gives an event saying so, within the bound; a worker that
dies mid-analysis leaves the call to another."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime import analysis
from agent_runtime.analysis import ANALYSIS_CONSUMER
from agent_runtime.analysis.request import response_format
from agent_runtime.call_events import from_config, outbox_key
from agent_runtime.call_events.delivery import Delivery
from tests.knowledge.helpers import cli
from tests.support.objects import voice_agent
from tests.support.runtime import make_config
from tests.support.servers.openai_server import OpenAIServer, Reply
from tests.support.webhook import Receiver

pytestmark = pytest.mark.redis

KEY = b"whsec-analysis"
NS = "clinic"
TRANSCRIPT = [
    {"role": "assistant", "text": "Maple Street clinic, how can I help?"},
    {"role": "user", "text": "I need my insulin refilled, my name is [name]."},
    {"role": "assistant", "text": "The pharmacy can refill it; it opens at nine on Saturday."},
]
ANSWER = {
    "summary": "The caller asked for an insulin refill and got the pharmacy's hours.",
    "structuredData": {"reason": "prescription", "medication": "insulin", "age": "unknown"},
    "success": {"verdict": "pass", "reason": "The caller got the hours."},
}
ANALYSIS = {
    "llm": {"provider": "openai", "model": "analyst-model", "baseURL": ""},
    "timeoutSeconds": 20,
    "summary": {},
    "structuredData": {
        "fields": [
            {"name": "reason", "description": "why", "enum": ["prescription", "other"]},
            {"name": "medication", "description": "the medication asked about"},
            {"name": "age", "type": "integer", "description": "the caller's age"},
        ]
    },
    "successEvaluation": {"rubric": "The caller got the pharmacy's hours."},
}


@dataclass
class Agent:
    """An agent with a webhook sink and an analysis by the stand-in model."""

    redis_url: str
    model: OpenAIServer
    crm: Receiver
    name: str = field(default_factory=lambda: f"agent-{uuid.uuid4().hex[:8]}")

    def config(self, **changes: Any) -> Any:
        spec = json.loads(json.dumps(ANALYSIS))
        spec["llm"]["baseURL"] = self.model.base_url
        spec.update(changes)
        events = {
            "sinks": [{"name": "crm", "webhook": {"url": self.crm.url, "signingSecretRef": {
                "name": "crm", "key": "hmac"}}}],
            "outbox": {"redisUrlSecretRef": {"name": "redis", "key": "url"}},
        }  # fmt: skip
        return make_config({"callEvents": events, "analysis": spec}, name=self.name, namespace=NS)

    @property
    def env(self) -> dict[str, str]:
        return {
            OUTBOX_REDIS_ENV: self.redis_url,
            sink_secret_env(0): KEY.decode(),
            "KUBEVOX_ANALYSIS_API_KEY": "sk-analysis",
        }

    async def call_ended(self, config: Any, call_id: str) -> dict[str, Any]:
        """A call's end as a worker writes it: the record without its transcript (the agent
        does not log transcripts), the transcript beside it for the analysis alone."""
        publisher = from_config(config, self.env)
        assert publisher is not None
        record = {"call_id": call_id, "room": call_id, "agent": self.name, "namespace": NS,
                  "config_hash": "abc", "outcome": "completed"}  # fmt: skip
        event = await publisher.publish(
            "call.ended", call_id, record, private={"transcript": TRANSCRIPT}
        )
        await publisher.aclose()
        assert event is not None
        return event

    def delivery(self, config: Any, consumer: str = "pod-a") -> Delivery:
        delivery = analysis.build_delivery(config, self.env, consumer=consumer)
        assert delivery is not None
        return delivery


@pytest.fixture
async def agent(redis_server: RedisSearchServer) -> AsyncIterator[Agent]:
    async with OpenAIServer("analyst") as model, Receiver(KEY) as crm:
        model.default = Reply(text="Here it is: " + json.dumps(ANSWER))
        a = Agent(redis_server.url, model, crm)
        yield a
        r = aioredis.from_url(redis_server.url)
        await r.delete(outbox_key(NS, a.name))
        await r.aclose()


async def _deliver(delivery: Delivery) -> None:
    try:
        await delivery.deliver_pending_once()
    finally:
        await delivery.aclose()


def _analyzed(crm: Receiver) -> list[dict[str, Any]]:
    return [e for e in crm.events if e["type"] == "dev.kubevox.call.analyzed"]


async def test_a_call_is_analysed_into_a_call_analyzed_event_from_a_transcript_no_sink_gets(
    agent: Agent,
) -> None:
    config = agent.config()
    ended = await agent.call_ended(config, "call-1")
    await _deliver(agent.delivery(config))

    assert agent.crm.refused == 0
    types = [e["type"] for e in agent.crm.events]
    assert types == ["dev.kubevox.call.ended", "dev.kubevox.call.analyzed"]
    sent_end, (event,) = agent.crm.events[0], _analyzed(agent.crm)
    assert "transcript" not in json.dumps(sent_end)  # no sink gets the transcript
    assert event["subject"] == "call-1"
    assert event["id"] == f"{ended['id']}-analyzed"
    data = event["data"]
    assert data["summary"] == ANSWER["summary"]
    # "unknown" is no integer: reported missing, not turned into a number.
    assert data["structured_data"] == {"reason": "prescription", "medication": "insulin"}
    assert data["missing"] == ["age"]
    assert data["success"] == {"passed": True, "reason": "The caller got the hours."}
    assert (data["call_id"], data["agent"], data["config_hash"]) == ("call-1", agent.name, "abc")
    assert data["model"] == "analyst-model"
    assert "error" not in data

    # The model got the transcript, with the declared parts to write, and its own key.
    (request,) = agent.model.chat_requests
    system, user = (m["content"] for m in request.body["messages"])
    assert "age (integer)" in system
    assert "The caller got the pharmacy's hours." in system
    assert "caller: I need my insulin refilled, my name is [name]." in user
    assert request.headers["Authorization"] == "Bearer sk-analysis"
    # ...and the reply's schema as the request's structured-output format, as OpenAI reads it.
    assert request.body["response_format"] == response_format(config.spec.analysis)

    # A second pass (another worker, or this one again) analyses nothing twice.
    await _deliver(agent.delivery(config, consumer="pod-b"))
    assert len(_analyzed(agent.crm)) == 1
    assert len(agent.model.chat_requests) == 1


@pytest.mark.parametrize(
    ("reply", "bound", "error"),
    [
        # livekit's client retries twice (after 0.1 s and 2 s) within the bound, then fails.
        (Reply(status=500), 15, "the language model failed"),
        (Reply(text="Sorry, I cannot help with that."), 15, "no JSON object"),
        (Reply(hang_seconds=30), 2, "no analysis within 2 s"),
    ],
    ids=["error", "nonsense", "hang"],
)
async def test_a_model_that_fails_gives_an_event_saying_so_within_the_bound(
    agent: Agent, reply: Reply, bound: float, error: str
) -> None:
    agent.model.default = reply
    config = agent.config(timeoutSeconds=bound)
    await agent.call_ended(config, "call-2")
    started = time.monotonic()
    await _deliver(agent.delivery(config))
    assert time.monotonic() - started < bound + 5  # the bound, no retry loop behind it
    (event,) = _analyzed(agent.crm)
    assert error in event["data"]["error"], event["data"]
    assert not {"summary", "structured_data", "success"} & set(event["data"])


async def test_a_worker_that_dies_mid_analysis_leaves_the_call_to_another(
    agent: Agent, redis_server: RedisSearchServer
) -> None:
    """pod-a read the call's end in the analysis' group and died before it acknowledged it;
    pod-b claims it once it has been idle long enough, and analyses it."""
    config = agent.config()
    await agent.call_ended(config, "call-3")
    r = aioredis.from_url(redis_server.url)
    key = outbox_key(NS, agent.name)
    try:
        await r.xgroup_create(key, ANALYSIS_CONSUMER, id="0", mkstream=True)
        taken = await r.xreadgroup(ANALYSIS_CONSUMER, "pod-a", {key: ">"}, count=10)
        assert len(taken[0][1]) == 1
    finally:
        await r.aclose()
    b = agent.delivery(config, consumer="pod-b")
    b.claim_idle_ms = 200
    await asyncio.sleep(0.3)
    await _deliver(b)
    (event,) = _analyzed(agent.crm)
    assert event["data"]["summary"] == ANSWER["summary"]


async def test_kubevox_agent_chat_ends_with_its_analysis_at_the_sinks(
    redis_server: RedisSearchServer, tmp_path: Path
) -> None:
    """A team tries its analysis without placing a call: ``kubevox-agent chat`` delivers the
    session's ``call.analyzed``, made from what was said (the agent's replies and the analysis
    come from one stand-in model, told apart by their instructions)."""
    async with OpenAIServer("openai") as model, Receiver(KEY) as crm:

        def answer(body: dict[str, Any]) -> Reply:
            system = str(body["messages"][0]["content"])
            if system.startswith("You analyse a finished call"):
                return Reply(text=json.dumps(ANSWER))
            return Reply(text="The pharmacy opens at nine on Saturday.")

        model.responder = answer
        a = Agent(redis_server.url, model, crm)
        spec = a.config().spec.to_k8s()
        spec["analysis"]["llm"] = {"provider": "openai", "model": "analyst-model",
                                   "baseURL": model.base_url}  # fmt: skip
        manifest = tmp_path / "agent.yaml"
        manifest.write_text(yaml.safe_dump(voice_agent(a.name, NS, **spec)))
        env = {**os.environ, **a.env, "OPENAI_API_KEY": "sk-test", "DEEPGRAM_API_KEY": "dg",
               "CARTESIA_API_KEY": "sk_car"}  # fmt: skip
        said = "I need my insulin refilled. When does the pharmacy open on Saturday?\n"
        chat = await asyncio.to_thread(
            cli, "chat", "-f", str(manifest), env=env, stdin=said, timeout=180
        )
        assert chat.returncode == 0, chat.stderr
    record = json.loads(next(line for line in chat.stdout.splitlines() if line.startswith("{")))
    (event,) = _analyzed(crm)
    assert event["subject"] == record["call_id"]
    assert event["data"]["summary"] == ANSWER["summary"]
    assert event["data"]["success"]["passed"] is True
    analysis_request = next(
        r for r in model.chat_requests if "analyse" in r.body["messages"][0]["content"]
    )
    assert "caller: I need my insulin refilled." in analysis_request.body["messages"][1]["content"]
    assert "transcript" not in record  # the agent does not log transcripts: only the model saw it
