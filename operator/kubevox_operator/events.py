"""Kubernetes Events for the notable transitions, posted in the background (a courtesy: no
reconcile waits for one, and none fails for one)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Coroutine
from typing import Any

from kubevox_api import contract

from .kube import ApiError
from .status import failure_condition, now_iso
from .store import Store

Obj = dict[str, Any]
log = logging.getLogger("kubevox.controller")


class Events:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._background: set[asyncio.Task[None]] = set()
        self._host = socket.gethostname()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Events still being posted are given a moment (at shutdown)."""
        if self._background:
            await asyncio.wait(self._background, timeout=5)

    def event(self, body: Obj, type_: str, reason: str, message: str) -> None:
        """Posts an Event in the background: no reconcile waits for a courtesy."""
        self._spawn(self.post(body, type_, reason, message))

    async def post(self, body: Obj, type_: str, reason: str, message: str) -> None:
        meta = body["metadata"]
        now = now_iso()
        try:
            await self._store.api.create_event(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "generateName": f"{meta['name']}.",
                        "namespace": meta["namespace"],
                    },
                    "involvedObject": {
                        "apiVersion": body.get("apiVersion"),
                        "kind": body.get("kind"),
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                    },
                    "type": type_,
                    "reason": reason,
                    "message": message[:1000],
                    "source": {"component": contract.MANAGED_BY},
                    "reportingComponent": contract.MANAGED_BY,
                    "reportingInstance": self._host,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                }
            )
        except (ApiError, OSError) as exc:  # an event is a courtesy; never fail for it
            log.debug("cannot post event: %s", exc)

    def transitions(self, body: Obj, old: Obj, new: Obj, good: str) -> None:
        """Events for the notable transitions: Ready flips, a new Degraded/Failed reason."""

        def cond(st: Obj, t: str) -> tuple[str, str, str]:
            c: Obj = next((c for c in st.get("conditions", []) or [] if c.get("type") == t), {})
            return c.get("status", ""), c.get("reason", ""), c.get("message", "")

        bad = failure_condition(body.get("kind", ""))
        r_old, r_new = cond(old, "Ready"), cond(new, "Ready")
        d_old, d_new = cond(old, bad), cond(new, bad)
        if d_new[0] == "True" and d_new[:2] != d_old[:2]:
            self.event(body, "Warning", d_new[1], d_new[2])
        if r_new[0] != r_old[0] and r_new[0] == "True":
            self.event(body, "Normal", good, r_new[2])
        elif r_new[0] == "False" and r_old[0] == "True":
            self.event(body, "Warning", "NotReady", f"{r_new[1]}: {r_new[2]}")
        # Pods too small for their calls: said once for each new shortfall.
        f_old, f_new = cond(old, "ResourcesFit"), cond(new, "ResourcesFit")
        if f_new[0] == "False" and f_new != f_old:
            self.event(body, "Warning", f_new[1], f_new[2])
