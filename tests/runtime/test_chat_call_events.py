"""``kubevox-agent chat`` ends its session with the call's record and delivers the call's events
to the agent's sinks (spec.callEvents), as a call would: a team tests its integration without
placing a call. The sinks are real: an HTTP receiver that checks the HMAC signature, and a
Redis Stream in the session's Redis; the outbox is a Redis Stream there too. The language model
is a local server speaking OpenAI's protocol. The caller's personal data (spec.redact) reaches
neither sink."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env
from kubevox_devenv.redis import RedisSearchServer

from tests.knowledge.helpers import cli
from tests.support.objects import voice_agent
from tests.support.servers.openai_server import OpenAIServer, Reply
from tests.support.webhook import Receiver

pytestmark = pytest.mark.redis

KEY = b"whsec-test-key"
SAID = "My name is Jane Doe, jane.doe@example.com or +1 415 555 0199. When do you open?"
PERSONAL = ("Jane", "Doe", "jane.doe@example.com", "415 555 0199")


async def test_chat_delivers_its_record_to_a_signed_webhook_and_a_redis_stream(
    redis_server: RedisSearchServer, tmp_path: Path
) -> None:
    stream = f"test:calls:{uuid.uuid4().hex[:8]}"
    namespace = f"chat-{uuid.uuid4().hex[:6]}"
    async with OpenAIServer("openai") as llm, Receiver(KEY) as crm:
        llm.default = Reply(text="We open at nine.")
        agent = voice_agent(
            "front-desk",
            namespace,
            llm={"provider": "openai", "model": "gpt-4.1-mini", "baseURL": llm.base_url},
            logTranscripts=True,  # the record carries the conversation, masked (spec.redact)
            callEvents={
                "outbox": {"redisUrlSecretRef": {"name": "redis", "key": "url"}},
                "sinks": [
                    {
                        "name": "crm",
                        "webhook": {
                            "url": crm.url,
                            "signingSecretRef": {"name": "crm", "key": "hmac"},
                        },
                    },
                    {
                        "name": "bus",
                        "redisStream": {
                            "redisUrlSecretRef": {"name": "redis", "key": "url"},
                            "stream": stream,
                        },
                    },
                ],
            },
        )
        manifest = tmp_path / "agent.yaml"
        manifest.write_text(yaml.safe_dump(agent))
        env = {
            **os.environ,
            "OPENAI_API_KEY": "sk-test",
            "DEEPGRAM_API_KEY": "dg-test",
            "CARTESIA_API_KEY": "sk_car_test",
            # What the operator puts in a worker's environment from the Secrets named.
            OUTBOX_REDIS_ENV: redis_server.url,
            sink_secret_env(0): KEY.decode(),
            sink_secret_env(1): redis_server.url,
        }
        # In a thread: the stand-in servers run on this test's event loop.
        chat = await asyncio.to_thread(
            cli, "chat", "-f", str(manifest), env=env, stdin=f"{SAID}\n", timeout=180
        )
        assert chat.returncode == 0, chat.stderr
    lines = chat.stdout.splitlines()
    record = json.loads(next(line for line in lines if line.startswith("{")))
    assert record["caller"] == "text"
    assert record["turns"] >= 1
    said = [t["text"] for t in record["transcript"] if t["role"] == "user"]
    assert said == ["My name is [name], [email] or [phone]. When do you open?"]
    assert "call events delivered to the agent's sinks" in chat.stdout

    # The webhook: both events of the call, signed, in order, the record as call.ended's data.
    assert crm.refused == 0
    assert [e["type"] for e in crm.events] == ["dev.kubevox.call.started", "dev.kubevox.call.ended"]
    started, ended = crm.events
    assert started["subject"] == ended["subject"] == record["call_id"]
    assert started["source"] == f"/namespaces/{namespace}/voiceagents/front-desk"
    assert ended["data"] == record
    assert started["id"] != ended["id"]
    delivered = json.dumps(crm.events)
    assert [value for value in PERSONAL if value in delivered] == []

    # The Redis Stream: the same two events, by id.
    r = aioredis.from_url(redis_server.url)
    try:
        entries = await r.xrange(stream)
        ids = [json.loads(fields[b"event"])["id"] for _, fields in entries]
        assert ids == [started["id"], ended["id"]]
        streamed = b"".join(value for _, fields in entries for value in fields.values())
        assert [value for value in PERSONAL if value.encode() in streamed] == []
    finally:
        await r.aclose()
