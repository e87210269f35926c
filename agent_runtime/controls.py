"""What the agent's tools do to the call itself — hang up, transfer — behind a small protocol,
so the same Agent runs in a LiveKit room (the worker) and over stdin/stdout (``chat``)."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("kubevox.controls")


class CallControls(Protocol):
    def caller_is_phone(self) -> bool:
        """True when the caller is a SIP participant (a phone line)."""
        ...

    async def transfer(self, to: str) -> None:
        """Hand the caller over to ``to`` (tel:/sip: URI)."""
        ...


class TextControls:
    """``kubevox-agent chat``: there is no phone line; a transfer is only reported."""

    def __init__(self, *, pretend_phone: bool = False) -> None:
        self._phone = pretend_phone
        self.transfers: list[str] = []

    def caller_is_phone(self) -> bool:
        return self._phone

    async def transfer(self, to: str) -> None:
        self.transfers.append(to)
        log.info("transfer requested (text mode: no phone line)", extra={"transfer_to": to})
