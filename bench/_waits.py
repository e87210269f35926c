"""Waiting on the local control plane, for the operator benchmark (bench/operator_bench.py).

Each wait ends on something the cluster shows (a watch event, the audit log, the objects'
status, the operator's liveness probe), not after a fixed time, or gives up at its limit.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from kubevox_api import contract
from kubevox_devenv.controlplane import audit_writes
from kubevox_operator.kube import ApiError, Kube


def writes(audit: Path, user: str | None, since: float, ns: str, offset: int = 0) -> int:
    """How many writes ``user`` (None: anyone) made in ``ns`` since ``since`` (epoch seconds)."""
    return len(audit_writes(audit, since=since, user=user, namespace=ns, offset=offset))


def up_to_date(va: dict[str, Any]) -> bool:
    st = va.get("status") or {}
    return bool(
        st.get("observedGeneration") == va["metadata"]["generation"] and st.get("configHash")
    )


async def wait_statuses(
    kube: Kube, ns: str, n: int, limit: float, watching: asyncio.Event
) -> dict[str, float]:
    """name → first time (monotonic) its status is up to date, from a watch: the moment the
    event arrives, and no polling load on the API server while the operator is measured."""
    path = f"/apis/{contract.API_VERSION}/namespaces/{ns}/{contract.VOICE_AGENT_PLURAL}"
    seen: dict[str, float] = {}
    listed = await kube.request("GET", path)
    for va in listed["items"]:
        if up_to_date(va):
            seen[va["metadata"]["name"]] = time.monotonic()
    rv = listed["metadata"]["resourceVersion"]
    deadline = time.monotonic() + limit
    sess = await kube._sess()  # the client's authenticated session, for a streamed response
    while len(seen) < n and time.monotonic() < deadline:
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=deadline - time.monotonic())
        async with sess.get(path, params=params, timeout=timeout) as resp:
            resp.raise_for_status()
            watching.set()
            async for line in resp.content:
                ev = json.loads(line)
                va = ev["object"]
                rv = va["metadata"]["resourceVersion"]
                name = va["metadata"].get("name", "")
                if ev["type"] in ("ADDED", "MODIFIED") and name not in seen and up_to_date(va):
                    seen[name] = time.monotonic()
                    if len(seen) >= n:
                        break
    return seen


async def wait_live(url: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: ASYNC210 - a probe
                if resp.status == 200:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("operator did not become live")


async def wait_quiet(
    audit: Path, ns: str, user: str | None, quiet: float, limit: float, offset: int = 0
) -> float:
    """Seconds until ``user`` (None: anyone) wrote nothing in ``ns`` for ``quiet`` seconds."""
    start = time.monotonic()
    while writes(audit, user, time.time() - quiet, ns, offset) != 0:
        if time.monotonic() - start > limit:
            raise RuntimeError(f"{ns}: still writing after {limit:.0f}s")
        await asyncio.sleep(0.5)
    return time.monotonic() - start


async def rolled_out(kube: Kube, ns: str, n: int) -> bool:
    """The controller-manager is done with the children: every Deployment has created its
    ReplicaSet and pod (there is no kubelet: pods stay Pending), every HPA has been evaluated,
    every PDB observed."""

    async def items(path: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = (await kube.request("GET", path))["items"]
        return out

    deps = await items(f"/apis/apps/v1/namespaces/{ns}/deployments")
    hpas = await items(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers")
    pdbs = await items(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets")
    return (
        len(deps) == len(hpas) == len(pdbs) == n
        and all(
            d.get("status", {}).get("observedGeneration") == d["metadata"]["generation"]
            and d["status"].get("replicas") == d["spec"].get("replicas", 1)
            for d in deps
        )
        and all(h.get("status", {}).get("conditions") for h in hpas)
        and all(
            p.get("status", {}).get("observedGeneration") == p["metadata"]["generation"]
            for p in pdbs
        )
    )


async def wait_rolled_out(kube: Kube, ns: str, n: int, limit: float = 900) -> float:
    start = time.monotonic()
    while not await rolled_out(kube, ns, n):
        if time.monotonic() - start > limit:
            raise RuntimeError(f"{ns}: children not rolled out after {limit:.0f}s")
        await asyncio.sleep(1)
    return time.monotonic() - start


async def exists(kube: Kube, path: str) -> bool:
    try:
        await kube.request("GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


async def delete_namespace(kube: Kube, ns: str, limit: float = 900) -> float:
    """Delete ``ns`` and wait until it is gone with everything in it. Left in place, its HPAs
    keep the controller-manager and the API server busy while the next phase is measured: each
    is evaluated every 15 s and, with no custom-metrics API here, records failure Events (seen
    in the audit log: ~2 Event writes/s per 100 HPAs)."""
    start = time.monotonic()
    await kube.request("DELETE", f"/api/v1/namespaces/{ns}")
    while await exists(kube, f"/api/v1/namespaces/{ns}"):
        if time.monotonic() - start > limit:
            raise RuntimeError(f"namespace {ns} still there after {limit:.0f}s")
        await asyncio.sleep(1)
    return time.monotonic() - start
