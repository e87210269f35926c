"""The operator's own list-and-watch of its optional children's kinds (ServiceMonitor,
ScaledObject), while their CRD is served.

Not kopf's: when such a CRD is deleted, kopf's watch of its kind ends and reconnects, and the API
server's discovery can still list the kind for a moment after the CRD's deletion events, so kopf
keeps the watch; its reconnect then gets a 404, which kopf treats as fatal (the operator exited;
docs/operator.md). Here a 404 only means the kind is not served at that moment: the watch waits
and looks again, and it is stopped when the CRD's deletion is seen (Controller.observe_crd)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Callable, Collection
from typing import Any

import aiohttp

from .kube import KINDS, MANAGED_SELECTOR, WATCH_TIMEOUT_SECONDS, ApiError, Kube

Obj = dict[str, Any]
Observe = Callable[[str, str | None, Obj], None]
log = logging.getLogger("kubevox.controller")


class OptionalWatches:
    """One task per optional kind served (per watched namespace when they are all named), that
    lists the kind and then follows its watch, re-listing when the watch is too old (410)."""

    def __init__(
        self,
        kube: Callable[[], Kube | None],
        observe: Observe,
        ready: asyncio.Event,
        namespaces: Collection[str] = (),
        *,
        retry_seconds: float = 2.0,
        timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
    ) -> None:
        self._kube = kube
        self._observe = observe
        self._ready = ready  # kopf has listed the other kinds: events may be handled
        self._patterns = tuple(namespaces)
        self._retry = retry_seconds
        self._timeout = timeout_seconds
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}

    def _scopes(self) -> list[str | None]:
        """Namespaces to watch in: the ones named, or every one (None) when there is no list or
        a glob in it (its matches can come and go; events are then filtered here)."""
        if self._patterns and not any(set(p) & set("*?[") for p in self._patterns):
            return list(self._patterns)
        return [None]

    def _wanted(self, obj: Obj) -> bool:
        ns = (obj.get("metadata") or {}).get("namespace", "")
        return not self._patterns or any(fnmatch.fnmatchcase(ns, p) for p in self._patterns)

    @property
    def watched(self) -> frozenset[str]:
        return frozenset(self._tasks)

    def follow(self, served: Collection[str]) -> None:
        """Watch exactly the kinds in ``served``."""
        for kind in set(served) - set(self._tasks):
            self._tasks[kind] = [
                asyncio.create_task(self._run(kind, ns), name=f"watch {kind} in {ns or 'all'}")
                for ns in self._scopes()
            ]
        for kind in set(self._tasks) - set(served):
            for task in self._tasks.pop(kind):
                task.cancel()

    async def stop(self) -> None:
        tasks = [t for ts in self._tasks.values() for t in ts]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, kind: str, namespace: str | None) -> None:
        await self._ready.wait()
        while True:
            kube = self._kube()
            try:
                if kube is not None:
                    await self._list_and_watch(kube, kind, namespace)
                    continue  # a watch too old to resume (410): list again
            except ApiError as exc:
                # 404: not served at this moment (a CRD going or coming): retried until the
                # CRD's deletion stops this task. Anything else: said, and retried.
                level = logging.INFO if exc.status == 404 else logging.WARNING
                log.log(level, "watch of %s: %s", kind, exc)
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                log.warning("watch of %s: %s: %s", kind, type(exc).__name__, exc)
            await asyncio.sleep(self._retry)

    async def _list_and_watch(self, kube: Kube, kind: str, namespace: str | None) -> None:
        path = KINDS[kind].path(namespace)
        listed = await kube.request("GET", path, params={"labelSelector": MANAGED_SELECTOR})
        version = listed["metadata"]["resourceVersion"]
        for obj in listed.get("items", []):
            if self._wanted(obj):
                # A list's items carry no kind; the watch's objects (and kopf's) do.
                obj = {"apiVersion": KINDS[kind].api_version, "kind": kind, **obj}
                self._observe(kind, None, obj)
        params = {
            "labelSelector": MANAGED_SELECTOR,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self._timeout),
        }
        while True:  # each watch ends after timeoutSeconds; the next resumes where it ended
            async for event in kube.watch(path, {**params, "resourceVersion": version}):
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        return  # expired: list again
                    raise ApiError(int(obj.get("code") or 500), str(obj.get("message", obj)))
                version = obj["metadata"]["resourceVersion"]
                if event.get("type") != "BOOKMARK" and self._wanted(obj):
                    self._observe(kind, event.get("type"), obj)
