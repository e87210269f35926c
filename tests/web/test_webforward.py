"""`make run`'s call page on localhost: the relay it leaves running (kubevox_devenv.webforward)
carries HTTP to its target, and `make cluster-down`'s stop leaves no process behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from kubevox_devenv import webforward
from kubevox_devenv.procs import cmdline, free_port


@pytest.fixture
async def target() -> AsyncIterator[int]:
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="the call page")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


async def test_the_relay_serves_the_target_on_localhost_until_stopped(
    target: int, tmp_path: Path
) -> None:
    port = free_port()
    webforward.start(tmp_path, port, f"127.0.0.1:{target}")
    pid = int((tmp_path / webforward.PID_FILE).read_text())
    try:
        text = ""
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the relay's interpreter is starting
                try:
                    async with http.get(f"http://localhost:{port}/") as resp:
                        text = await resp.text()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        assert text == "the call page"
    finally:
        webforward.stop(tmp_path)
    # (A zombie until this test process reaps it: the demo's relay has no waiting parent.)
    assert webforward.MODULE not in cmdline(pid)
    assert not (tmp_path / webforward.PID_FILE).exists()
