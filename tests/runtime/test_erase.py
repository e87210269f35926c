"""``kubevox-agent erase`` (agent_runtime/erasure.py), against real Redis and a real
S3-compatible server: one call's, or one phone number's, recordings and events (records,
transcripts) leave the agent's storage, its outbox and its Redis Stream sink; other calls'
stay; the number is found by its recordings' HMAC and by the records that carry it, and is
never printed back."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubevox_api import AgentRuntimeConfig
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env
from kubevox_api.voiceagent_recording import STORAGE_ACCESS_KEY_ENV, STORAGE_SECRET_KEY_ENV
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.s3 import S3Server

from agent_runtime.call_events.outbox import EVENT_FIELD, Outbox, connect, outbox_key
from agent_runtime.cli import main
from agent_runtime.recording.storage import RecordingStore
from tests.support.runtime import make_config

NUMBER = "+1 555 010 0100"


@pytest.fixture
def agent(redis_server: RedisSearchServer, s3_server: S3Server) -> AgentRuntimeConfig:
    bucket = f"erase-{uuid.uuid4().hex[:8]}"
    s3_server.make_bucket(bucket)
    ref = {"name": "r", "key": "url"}
    spec = {
        "recording": {
            "notice": "This call may be recorded. Is that all right?",
            "storage": {
                "endpoint": s3_server.endpoint,
                "bucket": bucket,
                "accessKeyRef": {"name": "s3", "key": "a"},
                "secretKeyRef": {"name": "s3", "key": "s"},
            },
        },
        "callEvents": {
            "outbox": {"redisUrlSecretRef": ref},
            "sinks": [
                {
                    "name": "crm",
                    "webhook": {
                        "url": "http://crm.example:8080/calls",
                        "signingSecretRef": {"name": "crm", "key": "hmac"},
                    },
                },
                {
                    "name": "bus",
                    "redisStream": {
                        "redisUrlSecretRef": ref,
                        "stream": f"erase:bus:{uuid.uuid4().hex[:8]}",
                    },
                },
            ],
        },
    }
    return make_config(spec, name=f"desk-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def env(agent: AgentRuntimeConfig, redis_server: RedisSearchServer, s3_server: S3Server) -> Any:
    values = {
        OUTBOX_REDIS_ENV: redis_server.url,
        sink_secret_env(0): "hmac-key",
        sink_secret_env(1): redis_server.url,
        STORAGE_ACCESS_KEY_ENV: s3_server.access_key,
        STORAGE_SECRET_KEY_ENV: s3_server.secret_key,
    }
    os.environ.update(values)
    yield values
    for var in values:
        os.environ.pop(var, None)


def _event(call: str, kind: str, number: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"call_id": call, "transcript": [{"role": "user", "text": "hi"}]}
    if number:
        data["caller_number"] = number
    return {
        "id": f"{call}-{kind}",
        "type": f"dev.kubevox.call.{kind}",
        "subject": call,
        "data": data,
    }


async def _populate(agent: AgentRuntimeConfig, url: str) -> None:
    """call-a and call-b recorded (a: the number's); call-c's record carries the number
    (logged unmasked), not recorded; call-d recorded from the number, its events gone."""
    redis = connect(url)
    outbox = Outbox(redis, outbox_key(agent.namespace, agent.name))
    events = agent.spec.call_events
    assert events is not None
    assert events.sinks[1].redis_stream is not None
    bus = events.sinks[1].redis_stream.stream
    for call, number in (("call-a", None), ("call-b", None), ("call-c", "+15550100100")):
        for kind in ("started", "ended"):
            event = _event(call, kind, number if kind == "ended" else None)
            await outbox.publish(event)
            await redis.xadd(bus, {EVENT_FIELD: json.dumps(event)})
    await redis.aclose()


def _upload(
    agent: AgentRuntimeConfig, env: Any, tmp_path: Path, call: str, number: str | None
) -> str:
    assert agent.spec.recording is not None
    store = RecordingStore(agent.spec.recording.storage, agent.namespace, agent.name, env)
    path = tmp_path / f"{call}.ogg"
    path.write_bytes(b"OggS" + os.urandom(512))
    name = store.object_name(call, datetime.now(UTC))
    store.upload(path, name, call, number)
    return name


async def _calls_in(url: str, key: str) -> list[str]:
    redis = connect(url)
    try:
        entries = await redis.xrange(key)
    finally:
        await redis.aclose()
    return sorted({json.loads(f[EVENT_FIELD.encode()])["subject"] for _, f in entries})


def _erase(agent: AgentRuntimeConfig, tmp_path: Path, capsys: Any, *args: str) -> dict[str, Any]:
    config = tmp_path / "agent.json"
    config.write_text(agent.model_dump_json(by_alias=True))
    assert main(["erase", "--config", str(config), *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return out


def test_one_call_and_then_one_number_are_erased_everywhere(
    agent: AgentRuntimeConfig,
    env: Any,
    redis_server: RedisSearchServer,
    s3_server: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(_populate(agent, redis_server.url))
    rec = {c: _upload(agent, env, tmp_path, c, n) for c, n in
           (("call-a", NUMBER), ("call-b", None), ("call-d", "+15550100100"))}  # fmt: skip
    assert agent.spec.recording is not None
    assert agent.spec.call_events is not None
    bucket = agent.spec.recording.storage.bucket
    box = outbox_key(agent.namespace, agent.name)
    stream = agent.spec.call_events.sinks[1].redis_stream
    assert stream is not None

    def left() -> tuple[list[str], list[str], set[str]]:
        objects = {
            o.object_name or "" for o in s3_server.client().list_objects(bucket, recursive=True)
        }
        return (
            asyncio.run(_calls_in(redis_server.url, box)),
            asyncio.run(_calls_in(redis_server.url, stream.stream)),
            objects,
        )

    out = _erase(agent, tmp_path, capsys, "--call-id", "call-b")
    assert out["calls"] == ["call-b"]
    assert out["events"] == {"outbox": 2, "bus": 2}
    assert out["recordings"] == [rec["call-b"]]
    assert left() == (["call-a", "call-c"], ["call-a", "call-c"], {rec["call-a"], rec["call-d"]})

    out = _erase(agent, tmp_path, capsys, "--caller-number", NUMBER)
    # a and d by their recordings' HMAC, c by its record's number (written another way).
    assert out["calls"] == ["call-a", "call-c", "call-d"]
    assert out["events"] == {"outbox": 4, "bus": 4}
    assert sorted(out["recordings"]) == sorted([rec["call-a"], rec["call-d"]])
    assert "0100" not in json.dumps(out)  # the number is not printed back
    assert left() == ([], [], set())
