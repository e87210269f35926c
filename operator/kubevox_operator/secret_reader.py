"""Secrets, read on demand: the operator may get Secrets, never list or watch them."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from kubevox_api.common import SecretKeySelector

from .status import Problem
from .store import Store

Obj = dict[str, Any]
SECRET_TTL = 10.0


def secret_problem(secret: Obj | None, ns: str, ref: SecretKeySelector) -> Problem | None:
    """What is wrong with a referenced Secret key, if anything (``secret`` as read, or None)."""
    if secret is None:
        return Problem("SecretMissing", f"Secret {ns}/{ref.name} not found")
    if ref.key not in (secret.get("data") or {}) and ref.key not in (
        secret.get("stringData") or {}
    ):
        return Problem("SecretKeyMissing", f"Secret {ns}/{ref.name} has no key {ref.key!r}")
    return None


class Secrets:
    """Secrets read through ``store``'s API, each kept for SECRET_TTL seconds once found."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._secrets: dict[tuple[str, str], tuple[float, Obj | None]] = {}

    async def get(self, ns: str, name: str) -> Obj | None:
        """A Secret, read on demand (the operator may get Secrets, never list or watch them)."""
        hit = self._secrets.get((ns, name))
        if hit and hit[1] is not None and time.monotonic() - hit[0] < SECRET_TTL:
            return hit[1]
        obj = await self._store.api.get("Secret", ns, name)
        self._secrets[(ns, name)] = (time.monotonic(), obj)
        return obj

    async def read(self, ns: str, refs: list[SecretKeySelector]) -> dict[str, Obj | None]:
        """The Secrets ``refs`` name, each read once and all at once: a new object's first
        reconcile waits one round trip for them, not one per Secret."""
        names = list(dict.fromkeys(r.name for r in refs))
        fetched = await asyncio.gather(*(self.get(ns, n) for n in names))
        return dict(zip(names, fetched, strict=True))

    async def values(self, ns: str, name: str, keys: list[str], what: str) -> list[str] | Problem:
        """Values of a Secret's keys (never logged, never in status), or what is missing."""
        secret = await self.get(ns, name)
        if secret is None:
            return Problem("SecretMissing", f"Secret {ns}/{name} ({what}) not found")
        data = secret.get("data") or {}
        out = []
        for k in keys:
            if k not in data:
                return Problem("SecretKeyMissing", f"Secret {ns}/{name} ({what}) has no key {k!r}")
            out.append(base64.b64decode(data[k]).decode("utf-8", "replace").rstrip("\r\n"))
        return out
