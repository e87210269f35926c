"""End-to-end fixtures: the shared LiveKit server and Redis with search (tests/conftest.py), the
sample KnowledgeBase ingested into that Redis, OpenAI-compatible LLM servers whose answers use
the context they receive. The helpers that start real `kubevox-agent start` workers are in
tests/support/voice.py (the voice benchmarks use them too)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubevox_api import KnowledgeBase
from kubevox_devenv.knowledge import ingest_manifest
from kubevox_devenv.redis import RedisSearchServer

from tests.support.servers.openai_server import OpenAIServer
from tests.support.voice import answer_from_context, sample_docs

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def clinic_kb(
    redis_server: RedisSearchServer, tmp_path_factory: pytest.TempPathFactory
) -> KnowledgeBase:
    """The sample's KnowledgeBase, ingested into Redis by `kubevox-agent ingest`."""
    _, doc = sample_docs()
    doc["metadata"]["namespace"] = "e2e"
    result = ingest_manifest(doc, redis_server.url, tmp_path_factory.mktemp("kb"))
    assert result["chunks"] > 0
    return KnowledgeBase.model_validate(doc)


@pytest.fixture(scope="session")
async def llm_primary() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("primary") as server:
        server.responder = answer_from_context
        yield server


@pytest.fixture(scope="session")
async def llm_fallback() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer("fallback") as server:
        server.responder = answer_from_context
        yield server
