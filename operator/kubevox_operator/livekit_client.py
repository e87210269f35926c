"""One HTTP session to a LiveKit server's API, for the operator's few requests (SIP, rooms)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp
from livekit import api

TIMEOUT_SECONDS = 10.0
NETWORK = (aiohttp.ClientError, OSError)  # OSError covers TimeoutError and refused connections


class LiveKitClient:
    """Use as an async context manager: the session closes on exit."""

    def __init__(self, url: str, api_key: str, api_secret: str) -> None:
        self.url = url
        self._lk = api.LiveKitAPI(
            url,
            api_key,
            api_secret,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            failover=False,  # self-hosted: no other region to fail over to
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._lk.aclose()
