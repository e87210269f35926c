"""A French call through a real LiveKit server to a real `kubevox-agent start` worker running the
French sample (manifests/samples/french-agent.yaml), grounded by its French KnowledgeBase in
real Redis. Offline speech is English only, so the sample's cloud providers are played by local
servers speaking their wire protocols: Deepgram hears the caller (its transcripts are scripted),
Cartesia speaks for the agent and records every text it is asked to say. What it records is what
the caller hears: it must all be French, in Cartesia's French mode and the sample's French voice
— the greeting, the answer grounded in French, and kubevox's own apology."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from kubevox_api import KnowledgeBase, phrases_for
from kubevox_devenv.knowledge import ingest_manifest
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.caller import SimulatedCall
from agent_runtime.caller.audio import synthesize
from agent_runtime.text import detect_language
from tests.support.servers.cartesia_server import CartesiaServer
from tests.support.servers.deepgram_server import DeepgramServer
from tests.support.servers.openai_server import OpenAIServer, Reply
from tests.support.voice import (
    REPO,
    answer_from_context,
    call_options,
    grounded_turn,
    sample_docs,
    start_worker,
    write_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.voice]

SAMPLE = REPO / "manifests" / "samples" / "french-agent.yaml"
PHARMACY = "À quelle heure ouvre la pharmacie le samedi ?"
SUNDAY = "Et le dimanche, vous êtes ouverts ?"


@pytest.fixture(scope="module")
def french_kb(
    redis_server: RedisSearchServer, tmp_path_factory: pytest.TempPathFactory
) -> KnowledgeBase:
    _, doc = sample_docs(SAMPLE)
    doc["metadata"]["namespace"] = "e2e"
    result = ingest_manifest(doc, redis_server.url, tmp_path_factory.mktemp("kb-fr"))
    assert result["languages"] == [{"language": "fr", "documents": 1}]
    return KnowledgeBase.model_validate(doc)


@pytest.fixture
async def stand_ins() -> AsyncIterator[tuple[DeepgramServer, OpenAIServer, CartesiaServer]]:
    async with (
        # One final transcript per utterance it hears, in order, 0.2 s after its end.
        DeepgramServer(final_delay=0.2, transcripts=[PHARMACY, SUNDAY]) as dg,
        OpenAIServer("openai") as llm,
        CartesiaServer() as cs,
    ):
        yield dg, llm, cs


def utterances(cartesia: CartesiaServer) -> list[str]:
    """What the agent was voiced saying: the transcript chunks of each Cartesia context."""
    said: dict[str, str] = {}
    for m in cartesia.messages:
        if m.get("transcript"):
            said[m["context_id"]] = said.get(m["context_id"], "") + m["transcript"]
    return [" ".join(text.split()) for text in said.values()]


async def test_a_french_caller_hears_only_french(
    livekit: LiveKitServer,
    redis_server: RedisSearchServer,
    french_kb: KnowledgeBase,
    stand_ins: tuple[DeepgramServer, OpenAIServer, CartesiaServer],
    tmp_path: Path,
) -> None:
    dg, llm, cs = stand_ins
    llm.responder = partial(
        answer_from_context, language="fr", unknown="Je n'ai pas cette information."
    )
    agent_doc, _ = sample_docs(SAMPLE)
    speech = {"credentials": {"secretKeyRef": {"name": "voice-providers", "key": "k"}}}
    config = write_config(
        tmp_path,
        french_kb,
        {**agent_doc["spec"]["llm"], "baseURL": llm.base_url, "credentials": None},
        sample=SAMPLE,
        agentName="e2e-accueil",
        stt={**agent_doc["spec"]["stt"], **speech, "baseURL": f"{dg.url}/v1/listen"},
        tts={**agent_doc["spec"]["tts"], **speech, "baseURL": cs.url},
        # The stand-in Deepgram sends final transcripts only: silence ends the caller's turn.
        turnDetection={"mode": "vad", "preemptiveGeneration": False},
    )
    worker = start_worker(
        tmp_path, config, livekit, redis_server,
        KUBEVOX_STT_API_KEY="dg-test", KUBEVOX_TTS_API_KEY="sk_car_test",
    )  # fmt: skip
    call = SimulatedCall(call_options(livekit, agent_name="e2e-accueil"))
    try:
        await call.start()
        assert call.result.greeting is not None, "no greeting was heard"
        answered = await call.turn(synthesize("one"))  # Deepgram's stand-in hears PHARMACY
        assert answered.latency_ms is not None, "no answer was heard"
        llm.responder = lambda _body: Reply(status=500)
        apologised = await call.turn(synthesize("two"))
        assert apologised.latency_ms is not None, "the call hung instead of apologising"
    finally:
        await call.hang_up()
        worker.stop()

    said = utterances(cs)
    asked = [grounded_turn(r.body) for r in llm.chat_requests]  # what the model was given
    assert said == [
        agent_doc["spec"]["greeting"],
        "La pharmacie du rez-de-chaussée ouvre le samedi à 9 h et ferme à midi.",
        phrases_for("fr").apology,
    ], (said, asked)
    assert [detect_language(text) for text in said] == ["fr", "fr", "fr"]
    voiced = [m for m in cs.messages if m.get("transcript")]
    assert {m["language"] for m in voiced} == {"fr"}
    assert {m["voice"]["id"] for m in voiced} == {agent_doc["spec"]["tts"]["voice"]}
    # Deepgram was asked for French, and the model got the French passage with the question.
    assert dg.connections[0]["query"]["language"] == "fr"
    question, context = grounded_turn(llm.chat_requests[0].body)
    assert question == PHARMACY
    assert "ouvre le samedi à 9 h" in context[0]
