"""The French sample (manifests/samples/french-agent.yaml) as a platform team tries it before
applying it: ``kubevox-agent ingest`` into real Redis, then ``kubevox-agent chat``, with the
OpenAI API played by a local server that speaks its wire protocol (the sample names cloud
providers; the caller's side of the chat is all kubevox's own code).

A French caller must hear only French: the greeting from the spec, the answer grounded in the
French knowledge base, and kubevox's own sentences (here the apology when the model fails)."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest
from kubevox_api import BUILT_IN_PHRASES, phrases_for
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.text import detect_language
from tests.support.servers.openai_server import OpenAIServer, Reply

from .helpers import cli

pytestmark = pytest.mark.redis

SAMPLE = Path(__file__).parents[2] / "manifests" / "samples" / "french-agent.yaml"
PHARMACY = "La pharmacie du rez-de-chaussée ouvre le samedi à 9 h et ferme à midi."
ANSWER = "Le samedi, la pharmacie ouvre à 9 h et ferme à midi."


def excerpts(body: dict[str, Any]) -> str:
    """The knowledge the agent handed the model with the caller's latest question."""
    return str(body["messages"][-1]["content"])


async def test_the_french_sample_answers_in_french_from_its_french_knowledge_base(
    redis_server: RedisSearchServer,
) -> None:
    async with OpenAIServer("openai") as llm:
        # What a model would answer from the excerpts it was given; then an outage.
        llm.script = [Reply(text=ANSWER)]
        llm.default = Reply(status=500)
        env = {
            **os.environ,
            "REDIS_URL": redis_server.url,
            "OPENAI_BASE_URL": llm.base_url,  # the openai client's own variable
            "OPENAI_API_KEY": "sk-test",
            "DEEPGRAM_API_KEY": "dg-test",
            "CARTESIA_API_KEY": "sk_car_test",
        }

        # In threads: the stand-in OpenAI server runs on this test's event loop.
        ingest = await asyncio.to_thread(cli, "ingest", "-f", str(SAMPLE), env=env, timeout=180)
        assert ingest.returncode == 0, ingest.stderr
        ingested = json.loads(ingest.stdout)
        assert ingested["ok"], ingested
        assert ingested["languages"] == [{"language": "fr", "documents": 1}]

        chat = await asyncio.to_thread(
            cli, "chat", "-f", str(SAMPLE), env=env, timeout=180,
            stdin="À quelle heure ouvre la pharmacie le samedi ?\nEt le dimanche ?\n",
        )  # fmt: skip
        assert chat.returncode == 0, chat.stderr
        out = chat.stdout

    said = [line.removeprefix("agent> ") for line in out.splitlines() if line.startswith("agent> ")]
    french = phrases_for("fr")
    assert said == [
        "Bonjour, cabinet médical des Tilleuls, Léa à l'appareil. Que puis-je faire pour vous ?",
        ANSWER,
        french.apology,
    ], out
    # Only French reached the caller: no built-in English sentence, and each line reads French.
    english = set(astuple(BUILT_IN_PHRASES["en"]))
    assert not english & set(said)
    assert [detect_language(line) for line in said] == ["fr"] * len(said)

    first = llm.chat_requests[0].body
    assert first["messages"][0]["content"].startswith("Tu es Léa")
    assert first["messages"][-1]["content"].endswith(
        "À quelle heure ouvre la pharmacie le samedi ?"
    )
    # The French question found the French passage first (French stems and stop words, and
    # the multilingual embedding model).
    assert excerpts(first).index(PHARMACY) < excerpts(first).index("Horaires")
