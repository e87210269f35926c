"""A call-events webhook receiver, as a CRM would run one: a real HTTP server on loopback that
keeps each CloudEvent whose HMAC signature holds, and can be taken down (503) and brought back."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent_runtime.call_events import verify
from agent_runtime.call_events.cloudevents import SIGNATURE_HEADER


class Receiver:
    def __init__(self, key: bytes) -> None:
        self.key = key
        self.events: list[dict[str, Any]] = []
        self.refused = 0
        """Requests whose signature did not hold."""
        self.unavailable = 0
        """Requests answered 503 while down."""
        self.down = False
        self.app = web.Application()
        self.app.router.add_post("/hooks/calls", self.receive)
        self.runner = web.AppRunner(self.app)
        self.url = ""

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.down:
            self.unavailable += 1
            return web.Response(status=503)
        if not verify(request.headers.get(SIGNATURE_HEADER, ""), body, self.key):
            self.refused += 1
            return web.Response(status=401)
        self.events.append(json.loads(body))
        return web.Response(status=204)

    def of_call(self, call_id: str) -> list[dict[str, Any]]:
        """The events received about one call, first delivery of each id, in order."""
        seen: dict[str, dict[str, Any]] = {}
        for e in self.events:
            if e["subject"] == call_id:
                seen.setdefault(e["id"], e)
        return list(seen.values())

    async def __aenter__(self) -> Receiver:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks/calls"
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.runner.cleanup()
