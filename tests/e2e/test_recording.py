"""Call recordings over real calls: a simulated caller talks through a real LiveKit server to a
real `kubevox-agent start` worker whose agent has spec.recording (consent required); the
recording goes to a real S3-compatible server (S3Proxy) with the agent's key pair.

A caller who says yes is recorded, both sides: the object is a stereo Ogg Opus file whose left
channel has the caller's voice and right channel the agent's. A caller who says no is not, and
nothing is uploaded. A phone keypad's consent key (DTMF through LiveKit) agrees as a yes does.
The record says which, and the answer never reaches the language model. A recording the storage
refuses at the call's end (the server down) waits in the worker's spool and reaches the bucket
once the server is back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubevox_api import KnowledgeBase
from kubevox_api.voiceagent_recording import STORAGE_ACCESS_KEY_ENV, STORAGE_SECRET_KEY_ENV
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.redis import RedisSearchServer
from kubevox_devenv.s3 import S3Server
from kubevox_devenv.worker import AgentWorker, call_records

from agent_runtime.caller import SimulatedCall
from agent_runtime.caller.audio import synthesize
from agent_runtime.recording.spool import SPOOL_ENV
from tests.support.recordings import channel_levels, stored
from tests.support.servers.openai_server import OpenAIServer
from tests.support.voice import call_options, start_worker, write_config
from tests.support.waits import until

pytestmark = [pytest.mark.e2e, pytest.mark.voice]

AGENT_NAME = "recording-e2e"
BUCKET = "calls"
NOTICE = "This call may be recorded. Is that all right?"
PARKING = "Is there free parking at the clinic?"


@pytest.fixture(scope="module")
def worker(
    tmp_path_factory: pytest.TempPathFactory,
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    s3_server: S3Server,
    clinic_kb: KnowledgeBase,
    llm_primary: OpenAIServer,
) -> Any:
    s3_server.make_bucket(BUCKET)
    workdir = tmp_path_factory.mktemp("recording")
    llm = {"provider": "openai", "model": "clinic", "baseURL": llm_primary.base_url}
    recording = {
        "notice": NOTICE,
        "answerTimeoutSeconds": 15,
        "storage": {
            "endpoint": s3_server.endpoint,
            "bucket": BUCKET,
            "prefix": "e2e/",
            "accessKeyRef": {"name": "s3", "key": "access"},
            "secretKeyRef": {"name": "s3", "key": "secret"},
        },
    }
    config = write_config(workdir, clinic_kb, llm, agentName=AGENT_NAME, recording=recording)
    keys = {
        STORAGE_ACCESS_KEY_ENV: s3_server.access_key,
        STORAGE_SECRET_KEY_ENV: s3_server.secret_key,
        SPOOL_ENV: str(workdir / "spool"),
    }
    w = start_worker(workdir, config, livekit, redis_server, **keys)
    yield w
    w.stop()


async def _record_of(worker: AgentWorker, room: str) -> dict[str, Any]:
    def logged() -> list[dict[str, Any]]:
        return [r for r in call_records(worker.log.read_text().splitlines()) if r["room"] == room]

    await until("the call's record in the worker's log", lambda: bool(logged()), 60)
    return logged()[0]


async def _stored(s3: S3Server, name: str, within: float = 60) -> bytes:
    found: list[bytes] = []

    def readable() -> bool:
        got = stored(s3.client(), BUCKET, name)
        if got is not None:
            found.append(got[1])
        return got is not None

    await until(f"{name} in the bucket", readable, within)
    return found[-1]


async def test_a_caller_who_agrees_is_recorded_both_sides(
    worker: AgentWorker, livekit: LiveKitServer, s3_server: S3Server, llm_primary: OpenAIServer
) -> None:
    call = SimulatedCall(call_options(livekit, AGENT_NAME), index=1)
    try:
        result = await call.start()
        assert "recorded" in (result.greeting or "").lower(), result.greeting  # the notice
        greeting = await call.turn(synthesize("Yes, that's fine."))
        assert "clinic" in greeting.heard.lower(), greeting.heard  # then the greeting
        answer = await call.turn(synthesize(PARKING))
        assert "parking" in answer.heard.lower(), answer.heard
    finally:
        await call.hang_up()
    record = await _record_of(worker, call.room_name)
    recording = record["recording"]
    assert (recording["consent"], recording["consent_by"]) == ("given", "speech")
    assert recording["object"].startswith("e2e/e2e/offline/")
    assert recording["object"].endswith(f"/{record['call_id']}.ogg")
    channels, levels = channel_levels(await _stored(s3_server, recording["object"]))
    assert channels == 2
    caller, agent = levels
    assert caller > 0.005, levels  # both sides have sound
    assert agent > 0.005, levels
    # The answer is kubevox's, not the conversation's: the model never saw the yes.
    asked = [str(r.body["messages"]) for r in llm_primary.chat_requests]
    assert not any("that's fine" in a.lower() for a in asked)


async def test_a_caller_who_refuses_is_not_recorded(
    worker: AgentWorker, livekit: LiveKitServer, s3_server: S3Server
) -> None:
    result = await SimulatedCall(call_options(livekit, AGENT_NAME), index=2).run(
        [synthesize("No, I don't want that."), synthesize(PARKING)]
    )
    assert result.error is None, result.error
    assert "parking" in result.turns[1].heard.lower()  # the call goes on, unrecorded
    record = await _record_of(worker, result.room)
    assert record["recording"] == {"consent": "refused", "consent_by": "speech", "object": None}
    await asyncio.sleep(2)  # an upload would have started at the call's end
    names = [o.object_name for o in s3_server.client().list_objects(BUCKET, recursive=True)]
    assert not any(record["call_id"] in (n or "") for n in names), names


async def test_the_consent_key_on_a_keypad_agrees(
    worker: AgentWorker, livekit: LiveKitServer, s3_server: S3Server
) -> None:
    call = SimulatedCall(call_options(livekit, AGENT_NAME), index=3)
    try:
        await call.start()  # the notice
        await call.room.local_participant.publish_dtmf(code=1, digit="1")
        answer = await call.turn(synthesize(PARKING))
        assert answer.heard, "no reply after the consent key"
    finally:
        await call.hang_up()
    record = await _record_of(worker, call.room_name)
    assert (record["recording"]["consent"], record["recording"]["consent_by"]) == ("given", "dtmf")
    channels, _ = channel_levels(await _stored(s3_server, record["recording"]["object"]))
    assert channels == 2


async def test_a_recording_the_storage_refused_reaches_it_once_back(
    worker: AgentWorker, livekit: LiveKitServer, s3_server: S3Server
) -> None:
    call = SimulatedCall(call_options(livekit, AGENT_NAME), index=4)
    try:
        await call.start()  # the notice
        await call.turn(synthesize("Yes, that's fine."))
        s3_server.stop()  # the storage goes away before the call ends
        await call.hang_up()
        record = await _record_of(worker, call.room_name)
        name = record["recording"]["object"]
        assert name, record["recording"]

        def spooled() -> bool:
            return "kept in the spool" in worker.log.read_text() and name in worker.log.read_text()

        await until("the refused upload, spooled", spooled, 90)
    finally:
        s3_server.start()
    channels, _ = channel_levels(await _stored(s3_server, name, within=120))
    assert channels == 2
    await until(
        "the spool's upload logged",
        lambda: "spooled recording uploaded" in worker.log.read_text(),
        30,
    )
