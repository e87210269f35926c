"""One HTTP session to a LiveKit server's API, for the operator's few requests (SIP, rooms).

Every connection's address is checked against the operator's allow list (egress.py): a
VoiceAgent's spec.livekit.url must not make the operator reach internal addresses."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

import aiohttp
from livekit import api

from .egress import Network, check_url, checked_session

TIMEOUT_SECONDS = 10.0
NETWORK = (aiohttp.ClientError, OSError)  # OSError covers TimeoutError and refused connections


class LiveKitClient:
    """Use as an async context manager: the URL is checked on entry, the session closed on
    exit. Subclasses say what a refused address becomes (``refused``)."""

    def __init__(
        self, url: str, api_key: str, api_secret: str, allowed: Sequence[Network] = ()
    ) -> None:
        self.url = url
        self._allowed = tuple(allowed)
        self._session = checked_session(
            self._allowed, timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        )
        self._lk = api.LiveKitAPI(
            url,
            api_key,
            api_secret,
            session=self._session,
            failover=False,  # self-hosted: no other region to fail over to
        )

    def refused(self, why: str) -> Exception:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        # Checked up front too: aiohttp does not resolve (so not check) a literal IP address.
        why = await check_url(self.url, self._allowed)
        if why is not None:
            await self._session.close()
            raise self.refused(why)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._lk.aclose()
        await self._session.close()
