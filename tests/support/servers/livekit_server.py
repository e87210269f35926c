"""A stand-in for LiveKit's worker endpoint: ``/agent`` speaks the real protobuf protocol
(WorkerMessage in, ServerMessage out), so a real AgentServer registers, reports load, accepts
and runs jobs. ``/rtc`` accepts the room connection and stays silent: jobs stay "in a call"
(connecting) until the SDK gives up, which is what the drain test needs. No media is served —
a real LiveKit server arrives with the end-to-end issue."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
from aiohttp import web
from livekit.protocol import agent, models

from .base import LocalServer


class LiveKitStandIn(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[agent.WorkerMessage] = []
        self.registered = asyncio.Event()
        self.rtc_connections = 0
        self.agent_connections = 0
        self._ws: web.WebSocketResponse | None = None
        self._new_msg = asyncio.Event()
        self.app.router.add_get("/agent", self._agent)
        self.app.router.add_get("/rtc", self._rtc)
        self.app.router.add_get("/rtc/v1", self._rtc)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def of(self, kind: str) -> list[agent.WorkerMessage]:
        return [m for m in self.received if m.WhichOneof("message") == kind]

    async def wait_for(self, kind: str, pred: object = None) -> agent.WorkerMessage:
        async with asyncio.timeout(45):
            while True:
                for m in self.of(kind):
                    if pred is None or pred(m):  # type: ignore[operator]
                        return m
                self._new_msg.clear()
                await self._new_msg.wait()

    async def _send(self, msg: agent.ServerMessage) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(msg.SerializeToString())

    async def request_job(self, agent_name: str, room: str) -> str:
        """Send an AvailabilityRequest; assign the job if the worker says it is available."""
        job = agent.Job(
            id=f"AJ_{uuid.uuid4().hex[:10]}",
            dispatch_id="AD_1",
            type=agent.JobType.JT_ROOM,
            agent_name=agent_name,
            room=models.Room(sid=f"RM_{room}", name=room),
        )
        await self._send(agent.ServerMessage(availability=agent.AvailabilityRequest(job=job)))
        self._jobs[job.id] = job
        return job.id

    _jobs: dict[str, agent.Job] = {}

    async def _agent(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self.agent_connections += 1
        async for raw in ws:
            if raw.type != aiohttp.WSMsgType.BINARY:
                continue
            msg = agent.WorkerMessage()
            msg.ParseFromString(raw.data)
            self.received.append(msg)
            self._new_msg.set()
            kind = msg.WhichOneof("message")
            if kind == "register":
                await self._send(
                    agent.ServerMessage(
                        register=agent.RegisterWorkerResponse(
                            worker_id="AW_test", server_info=models.ServerInfo(version="stand-in")
                        )
                    )
                )
                self.registered.set()
            elif kind == "availability" and msg.availability.available:
                job = self._jobs[msg.availability.job_id]
                await self._send(
                    agent.ServerMessage(
                        assignment=agent.JobAssignment(
                            job=job, url=self.ws_url, token="stand-in-token"
                        )
                    )
                )
            elif kind == "ping":
                await self._send(
                    agent.ServerMessage(pong=agent.WorkerPong(last_timestamp=msg.ping.timestamp))
                )
        return ws

    async def _rtc(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.rtc_connections += 1
        async for _ in ws:  # silent: no JoinResponse
            pass
        return ws
