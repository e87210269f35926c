"""A call's events, from its record: ``call.started`` when the caller is there, ``call.ended``
(and ``call.transferred`` first, for a transferred call) when it is over.

The start is published in the background: the caller hears the greeting without waiting for
Redis. The end is awaited, within a bound, before the call's end is acknowledged (the job's
shutdown callback): once ``ended`` returns, the record is in the outbox and survives the worker.
An outbox that cannot be reached is logged, never a hang-up delayed for long.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..callrecord import CallRecord
from . import CallEventPublisher

log = logging.getLogger("kubevox.call_events")

PUBLISH_TIMEOUT_SECONDS = 10.0
"""How long a call's end may wait for the outbox (Redis) before it is given up (logged)."""


class CallLifecycle:
    def __init__(self, publisher: CallEventPublisher | None, record: CallRecord) -> None:
        self.publisher = publisher
        self.record = record
        self._start: asyncio.Task[None] | None = None

    def started(self) -> None:
        if self.publisher is not None:
            self._start = asyncio.create_task(self._publish("call.started", self.record.started()))

    async def ended(self, default_outcome: str = "completed") -> dict[str, Any]:
        """The call's record (finished now if it was not), published."""
        data = self.record.finish(default_outcome)
        if self.publisher is None:
            return data
        if self._start is not None:
            await self._start  # the start before the end in the outbox
        if self.record.outcome == "transferred":
            await self._publish("call.transferred", data)
        # The analysis reads the transcript from the outbox; a sink, only from the record.
        analysed = self.record.keep_transcript and "transcript" not in data
        private = {"transcript": self.record.transcript} if analysed else None
        await self._publish("call.ended", data, private)
        return data

    async def end(self) -> None:
        """:meth:`ended`, as a job's shutdown callback."""
        await self.ended()

    async def _publish(
        self, type_: str, data: dict[str, Any], private: dict[str, Any] | None = None
    ) -> None:
        assert self.publisher is not None
        call = self.record.call_id
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await self.publisher.publish(type_, call, data, private=private)
        except Exception as e:  # the call goes on (or ends) regardless; said loudly
            log.error(
                "a call event could not be written to the outbox",
                extra={"type": type_, "call_id": call, "error": repr(e)},
            )
