"""The openai embedder through the real SDK against a local server speaking the embeddings API:
batching, order, and retry with backoff on rate limits and server errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import numpy as np
import pytest
from aiohttp import web
from kubevox_devenv.redis import free_port

from agent_runtime.knowledge import EmbeddingError, OpenAIEmbedder


class FakeEmbeddingsServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.fail_next: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.fail_next:
            status = self.fail_next.pop(0)
            return web.json_response({"error": {"message": "slow down", "type": "x"}},
                                     status=status, headers={"retry-after-ms": "10"})  # fmt: skip
        dims = int(body.get("dimensions") or 8)
        data = []
        for i, text in enumerate(body["input"]):
            vec = [float(len(text) + 1)] + [float(j == len(text) % dims) for j in range(1, dims)]
            data.append({"object": "embedding", "index": i, "embedding": vec})
        data.reverse()  # the API does not promise order; the client must sort by index
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return web.Response(text=json.dumps({"object": "list", "data": data,
                            "model": body["model"], "usage": usage}),
                            content_type="application/json")  # fmt: skip


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeEmbeddingsServer, str]]:
    server = FakeEmbeddingsServer()
    app = web.Application()
    app.router.add_post("/v1/embeddings", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield server, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_batches_keep_order_and_normalise(fake: tuple[FakeEmbeddingsServer, str]) -> None:
    server, url = fake
    emb = OpenAIEmbedder("sk-test", dimensions=8, base_url=url)
    texts = [f"text number {'x' * i}" for i in range(300)]
    vecs = await emb.embed_documents(texts)
    assert vecs.shape == (300, 8)
    assert [len(r["input"]) for r in server.requests] == [128, 128, 44]  # type: ignore[arg-type]
    assert all(r["model"] == "text-embedding-3-small" and r["dimensions"] == 8
               for r in server.requests)  # fmt: skip
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    first = np.asarray([len(texts[5]) + 1] + [float(j == len(texts[5]) % 8) for j in range(1, 8)])
    np.testing.assert_allclose(vecs[5], first / np.linalg.norm(first), rtol=1e-5)
    assert emb.model_id == "openai/text-embedding-3-small/8"
    await emb.aclose()


async def test_retries_rate_limits_and_server_errors(
    fake: tuple[FakeEmbeddingsServer, str],
) -> None:
    server, url = fake
    emb = OpenAIEmbedder("sk-test", dimensions=8, base_url=url)
    server.fail_next = [429, 500]
    vec = await emb.embed_query("hello")
    assert vec.shape == (8,)
    assert len(server.requests) == 3
    again = await emb.embed_query("hello")  # cached: the query is embedded once
    assert len(server.requests) == 3
    assert np.array_equal(vec, again)
    await emb.aclose()


async def test_gives_up_with_a_clear_error(fake: tuple[FakeEmbeddingsServer, str]) -> None:
    server, url = fake
    emb = OpenAIEmbedder("sk-test", dimensions=8, base_url=url, max_retries=1)
    server.fail_next = [503, 503]
    with pytest.raises(EmbeddingError, match="text-embedding-3-small"):
        await emb.embed_documents(["a"])
    assert len(server.requests) == 2
    await emb.aclose()
