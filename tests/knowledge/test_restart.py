"""A Redis restart: queries fail fast while it is down, then the same retriever recovers."""

from __future__ import annotations

import pytest
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.knowledge import LocalEmbedder, RetrievalError, Retriever, connect, ingest

from .helpers import make_kb

pytestmark = pytest.mark.redis


async def test_retriever_recovers_after_redis_restart(embedder: LocalEmbedder) -> None:
    # A Redis of its own, not the session's (tests/conftest.py): this test stops and restarts
    # it, which would cut every other test's connection.
    with RedisSearchServer() as server:
        client = connect(server.url)
        kb = make_kb("kb-restart", [{"name": "gym", "inline": "The gym is open 24 hours."}])
        assert (await ingest(kb, client, embedder)).ok
        await client.aclose()
        retriever = Retriever.from_url(server.url, "kb-restart", embedder)
        assert (await retriever.retrieve("when is the gym open?", 1))[0].source == "gym"

        server.stop(save=True)
        with pytest.raises(RetrievalError, match="unreachable"):
            await retriever.retrieve("when is the gym open?", 1)

        server.start()  # same port, data reloaded from its dump
        top = await retriever.retrieve("when is the gym open?", 1)
        assert top[0].source == "gym"
        await retriever.aclose()
