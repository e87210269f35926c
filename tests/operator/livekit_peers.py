"""The two ends of a call through a real livekit-server, for the tests of calls that wait for a
worker (test_waiting.py): a caller as a browser joins, and a real LiveKit Agents worker
(sleepy_worker.py) as a process of its own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.procs import free_port, stop_process_group
from livekit import api, rtc

SLEEPY = Path(__file__).with_name("sleepy_worker.py")


@asynccontextmanager
async def caller(server: LiveKitServer, room: str, agent_name: str) -> AsyncIterator[rtc.Room]:
    """A caller the way a browser joins: its token asks LiveKit to dispatch ``agent_name``."""
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(f"caller-{uuid.uuid4().hex[:6]}")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=agent_name)])
        )
        .to_jwt()
    )
    session = rtc.Room()
    await session.connect(server.url, token)
    try:
        yield session
    finally:
        await session.disconnect()


@contextmanager
def sleepy_worker(
    server: LiveKitServer, agent_name: str, log: Path, full_flag: Path | None = None
) -> Iterator[Path]:
    """sleepy_worker.py registered as ``agent_name``, its output in ``log``; it reports itself
    full while ``full_flag`` exists."""
    env = {**os.environ, **server.env()}
    flag = [str(full_flag)] if full_flag is not None else []
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(SLEEPY), agent_name, str(free_port()), *flag],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log
    finally:
        stop_process_group(proc.pid)


def log_has(log: Path, text: str) -> Callable[[], Awaitable[bool]]:
    """A probe for ``eventually``: has the worker logged ``text`` yet?"""
    return lambda: asyncio.to_thread(lambda: text in log.read_text())
