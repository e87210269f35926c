"""Fixtures of the knowledge-base tests: a real Redis with search, the local embedders, a local
HTTP server for URL sources."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from kubevox_devenv.redis import RedisSearchServer, free_port

from agent_runtime.knowledge import LocalEmbedder, MultilingualEmbedder, StaticEmbedder, connect

from .helpers import CuttableProxy

_names = itertools.count()


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    emb = LocalEmbedder()
    emb.encode(["load the model once per session"])
    return emb


@pytest.fixture(scope="session")
def static_embedder() -> StaticEmbedder:
    """The static model; its matrix is built on demand (about a minute) if install did not."""
    emb = StaticEmbedder()
    emb.encode(["load the matrix once per session"])
    return emb


@pytest.fixture(scope="session")
def multilingual_embedder() -> MultilingualEmbedder:
    """The multilingual model; loading its weights and vocabulary takes a few seconds."""
    emb = MultilingualEmbedder()
    emb.encode(["charger le modèle une fois par session"])
    return emb


@pytest.fixture
async def client(redis_server: RedisSearchServer) -> AsyncIterator[aioredis.Redis]:
    c = connect(redis_server.url)
    yield c
    await c.aclose()


@pytest.fixture
def index_name() -> str:
    """A fresh alias per test, so tests never see each other's versions."""
    return f"kb-test-{next(_names)}"


@pytest.fixture
async def proxy(redis_server: RedisSearchServer) -> AsyncIterator[CuttableProxy]:
    p = CuttableProxy(redis_server.port)
    await p.start()
    yield p
    await p.close()


PAGE = """<!doctype html><html><head><title>Shuttle service</title></head><body>
<nav><a href="/">Home</a><a href="/menu">Menu navigation link</a></nav>
<main><h1>Shuttle service</h1><h2>Airport shuttle</h2>
<p>The airport shuttle leaves the hotel every 40 minutes from 5 am to 11 pm.</p></main>
<footer>Copyright footer text</footer></body></html>"""


@pytest.fixture(scope="session")
async def http_base() -> AsyncIterator[str]:
    """127.0.0.1 HTTP server: /page.html, /big (over limits), /slow (past timeouts), 404s."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def big(_: web.Request) -> web.Response:
        return web.Response(text="word " * 2000, content_type="text/plain")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="too late", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/page.html", page)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
