"""Waiting in async tests without blocking the event loop: live calls' audio and LiveKit's pings
go on while a worker or the cluster is polled (a blocked loop makes LiveKit close the callers'
connections for missed pings)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(what: str, probe: Callable[[], bool], within: float) -> None:
    """Polls ``probe`` every 0.2 s until it is true; fails naming ``what`` after ``within`` s."""
    try:
        async with asyncio.timeout(within):
            while not probe():  # noqa: ASYNC110 (polling a worker's metrics or a room's state)
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
