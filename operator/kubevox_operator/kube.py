"""A small async Kubernetes client on aiohttp, with the credentials kopf logged in with.

kopf watches; this client writes (server-side apply, status merge-patches, events) and reads
what is not watched (Secrets, source ConfigMaps).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kopf
from kubevox_api import contract

from .metrics import API_WRITES

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    api_version: str
    plural: str

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def crd(self) -> str:
        """Name of the CustomResourceDefinition that would define it (``<plural>.<group>``)."""
        return f"{self.plural}.{self.api_version.rpartition('/')[0]}"

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The object's URL path; its collection's without ``name``, across every namespace
        with neither."""
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        out = (
            f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        )
        return f"{out}/{name}" if name else out


KINDS: dict[str, Kind] = {
    "ConfigMap": Kind("v1", "configmaps"),
    "Secret": Kind("v1", "secrets"),
    "ServiceAccount": Kind("v1", "serviceaccounts"),
    "Service": Kind("v1", "services"),
    "Pod": Kind("v1", "pods"),
    "Event": Kind("v1", "events"),
    "RoleBinding": Kind("rbac.authorization.k8s.io/v1", "rolebindings"),
    "Deployment": Kind("apps/v1", "deployments"),
    "ControllerRevision": Kind("apps/v1", "controllerrevisions"),
    "HorizontalPodAutoscaler": Kind("autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": Kind("policy/v1", "poddisruptionbudgets"),
    "ServiceMonitor": Kind("monitoring.coreos.com/v1", "servicemonitors"),
    "ScaledObject": Kind("keda.sh/v1alpha1", "scaledobjects"),
    "Job": Kind("batch/v1", "jobs"),
    "CronJob": Kind("batch/v1", "cronjobs"),
    "NetworkPolicy": Kind("networking.k8s.io/v1", "networkpolicies"),
    "Ingress": Kind("networking.k8s.io/v1", "ingresses"),
    contract.VOICE_AGENT_KIND: Kind(contract.API_VERSION, contract.VOICE_AGENT_PLURAL),
    contract.KNOWLEDGE_BASE_KIND: Kind(contract.API_VERSION, contract.KNOWLEDGE_BASE_PLURAL),
    contract.VOICE_AGENT_TEST_KIND: Kind(contract.API_VERSION, contract.VOICE_AGENT_TEST_PLURAL),
}


MANAGED_SELECTOR = f"{contract.LABEL_MANAGED_BY}={contract.MANAGED_BY}"
"""The operator's own children: every watch of a child kind selects them server-side."""
WATCH_TIMEOUT_SECONDS = 300
"""How long a watch request lasts before the API server ends it and it is made again."""


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        try:
            self.message = str(json.loads(body).get("message", body))
        except ValueError:
            self.message = body
        super().__init__(f"{status}: {self.message}")
        self.status = status
        # An API answer (conflict, forbidden, terminating namespace) says all there is to say:
        # it is logged without a traceback.
        self.expected = True


class Kube:
    """One connection pool for the operator's own requests."""

    def __init__(self, info: kopf.ConnectionInfo, concurrency: int = 32) -> None:
        self._info = info
        self._session: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(concurrency)
        self._tmp = tempfile.TemporaryDirectory(prefix="kubevox-op-")

    def _ssl(self) -> ssl.SSLContext | bool:
        info = self._info
        if info.insecure:
            return False
        ctx = ssl.create_default_context()
        if info.ca_path:
            ctx.load_verify_locations(cafile=str(info.ca_path))
        elif info.ca_data:
            data = info.ca_data if isinstance(info.ca_data, str) else info.ca_data.decode()
            ctx.load_verify_locations(cadata=base64.b64decode(data).decode())
        cert, key = info.certificate_path, info.private_key_path
        if info.certificate_data and info.private_key_data:
            cert = self._write("client.crt", info.certificate_data)
            key = self._write("client.key", info.private_key_data)
        if cert and key:
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def _write(self, name: str, data: str | bytes) -> str:
        raw = data if isinstance(data, bytes) else data.encode()
        path = Path(self._tmp.name) / name
        path.write_bytes(base64.b64decode(raw))
        path.chmod(0o600)
        return str(path)

    async def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            headers = {"User-Agent": "kubevox-operator", **self._info.as_http_headers()}
            conn = aiohttp.TCPConnector(ssl=self._ssl(), limit=64)
            self._session = aiohttp.ClientSession(
                base_url=self._info.server,
                headers=headers,
                connector=conn,
                timeout=aiohttp.ClientTimeout(total=30),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._tmp.cleanup()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Obj:
        sess = await self._sess()
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        async with (
            self._limit,
            sess.request(method, path, data=data, headers=headers, params=params) as resp,
        ):
            text = await resp.text()
            if resp.status >= 400:
                raise ApiError(resp.status, text)
            result: Obj = json.loads(text) if text else {}
            return result

    async def watch(self, path: str, params: dict[str, str]) -> AsyncIterator[Obj]:
        """The events of a watch (``params`` without ``watch``), until the server ends it
        (its ``timeoutSeconds``). An HTTP error raises ApiError; an ERROR event is yielded."""
        sess = await self._sess()
        # No total timeout: the server ends the stream; a silent connection is noticed by read.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=float(params["timeoutSeconds"]) + 30)
        async with sess.get(path, params={**params, "watch": "true"}, timeout=timeout) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, await resp.text())
            pending = b""
            async for chunk in resp.content.iter_any():  # lines may exceed a read buffer
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return await self.request("GET", KINDS[kind].path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def apply(self, obj: Obj) -> Obj:
        """Server-side apply under the operator's field manager; force: the operator owns these."""
        meta = obj["metadata"]
        API_WRITES.labels(verb="apply", kind=obj["kind"]).inc()
        return await self.request(
            "PATCH",
            KINDS[obj["kind"]].path(meta["namespace"], meta["name"]),
            obj,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": contract.FIELD_MANAGER, "force": "true"},
        )

    async def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> Obj:
        API_WRITES.labels(verb="patch-status", kind=kind).inc()
        return await self.request(
            "PATCH",
            KINDS[kind].path(namespace, name) + "/status",
            {"status": status},
            content_type="application/merge-patch+json",
        )

    async def json_patch(self, kind: str, namespace: str, name: str, ops: list[Obj]) -> Obj:
        """A JSON patch (RFC 6902) of the object itself; ``test`` ops make it conditional."""
        API_WRITES.labels(verb="patch", kind=kind).inc()
        return await self.request(
            "PATCH",
            KINDS[kind].path(namespace, name),
            ops,
            content_type="application/json-patch+json",
        )

    async def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        """Deletes the object, if it still exists (and, with ``uid``, is still that object: a
        namesake created since is left alone)."""
        API_WRITES.labels(verb="delete", kind=kind).inc()
        body: Obj = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", KINDS[kind].path(namespace, name), body)
        except ApiError as exc:
            # 409 with a uid: the precondition failed, the object is someone else's now.
            if exc.status != 404 and not (exc.status == 409 and uid is not None):
                raise

    async def create_event(self, event: Obj) -> None:
        API_WRITES.labels(verb="create", kind="Event").inc()
        await self.request("POST", KINDS["Event"].path(event["metadata"]["namespace"]), event)

    async def has_api(self, group_version: str, plural: str) -> bool:
        """Discovery (allowed to every authenticated user): is ``plural`` served?"""
        try:
            doc = await self.request("GET", f"/apis/{group_version}")
        except ApiError:
            return False
        return any(r.get("name") == plural for r in doc.get("resources", []))
