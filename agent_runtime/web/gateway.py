"""The web gateway's HTTP API, for one VoiceAgent with ``spec.web``:

* ``POST /v1/calls`` starts a call: ``{"metadata": {...}}`` (optional) in, ``{"url", "token",
  "room", "identity"}`` out (201). Refused: another site's page (403), a missing or wrong key
  (401), too many calls (429, with Retry-After), metadata the spec does not list (400).
* ``GET /`` is the call page (``/static/``: its script, style and the LiveKit browser SDK);
  ``GET /embed.js`` puts it on another site's page, in an iframe.
* ``GET /healthz`` for the kubelet.

The token is minted here because only a holder of the LiveKit API secret can; the secret never
leaves this process, and no token or key is logged."""

from __future__ import annotations

import hmac
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from kubevox_api.voiceagent_web import WebAccess

from ..errors import ConfigError
from .ratelimit import TokenBucket
from .tokens import call_grant

log = logging.getLogger("kubevox.web")

STATIC = Path(__file__).parent / "static"
SDK = STATIC / "vendor" / "livekit-client.umd.js"
CALLS = "/v1/calls"
MAX_METADATA_VALUE = 256


@dataclass(frozen=True)
class Gateway:
    """What the gateway serves with: the agent, the LiveKit credentials, ``spec.web``."""

    agent_name: str
    title: str
    livekit_url: str
    """The URL browsers connect to."""
    api_key: str
    api_secret: str
    web: WebAccess
    shared_key: str | None = None


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _same_site(origin: str, request: web.Request) -> bool:
    """The gateway's own page (behind an Ingress the Host header is the public host)."""
    return urlsplit(origin).netloc == request.host


def _allowed(gw: Gateway, origin: str | None, request: web.Request) -> bool:
    if origin is None:  # not a browser's cross-site request (curl, a team's backend)
        return True
    allowed = gw.web.allowed_origins
    return _same_site(origin, request) or "*" in allowed or origin in allowed


def _cors(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _metadata(gw: Gateway, body: Any) -> dict[str, str] | str:
    """The call's metadata, or why it is refused."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    raw = body.get("metadata") or {}
    if not isinstance(raw, dict):
        return "metadata must be an object of strings"
    unknown = sorted(set(raw) - set(gw.web.metadata_keys))
    if unknown:
        return f"metadata key {unknown[0]!r} is not in spec.web.metadataKeys"
    for key, value in raw.items():
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE:
            return f"metadata {key!r} must be a string of at most {MAX_METADATA_VALUE} characters"
    return {str(k): v for k, v in raw.items()}


def build_app(gw: Gateway) -> web.Application:
    if not SDK.is_file():  # a build that skipped the fetch: the page could not place a call
        raise ConfigError(
            f"{SDK}: missing; the call page needs it (hack/web/fetch-livekit-client.sh)"
        )
    bucket = TokenBucket(gw.web.rate_limit.calls_per_minute, gw.web.rate_limit.burst)
    page = (STATIC / "index.html").read_text().replace("{{title}}", _html(gw.title))

    async def preflight(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if not _allowed(gw, origin, request):
            return _error(403, "this origin may not start calls (spec.web.allowedOrigins)")
        return web.Response(
            status=204,
            headers={
                **_cors(origin),
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            },
        )

    async def start_call(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if not _allowed(gw, origin, request):
            log.info("call refused: origin", extra={"origin": origin})
            return _error(403, "this origin may not start calls (spec.web.allowedOrigins)")
        cors = _cors(origin)
        if gw.shared_key is not None:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), gw.shared_key.encode()):
                log.info("call refused: key", extra={"origin": origin})
                return _error(
                    401, "a valid key is required", **cors, **{"WWW-Authenticate": "Bearer"}
                )
        body: Any = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "the body must be JSON", **cors)
        metadata = _metadata(gw, body)
        if isinstance(metadata, str):
            return _error(400, metadata, **cors)
        wait = bucket.take()
        if wait:
            log.info("call refused: rate limit", extra={"origin": origin})
            return _error(
                429,
                "too many calls; try again later",
                **cors,
                **{"Retry-After": str(math.ceil(wait))},
            )
        grant = call_grant(
            api_key=gw.api_key,
            api_secret=gw.api_secret,
            agent_name=gw.agent_name,
            metadata=metadata,
            ttl_seconds=gw.web.token_lifetime_seconds,
        )
        log.info("call started", extra={"room": grant.room, "origin": origin})
        return web.json_response(
            {"url": gw.livekit_url, "token": grant.token, "room": grant.room,
             "identity": grant.identity},
            status=201,
            headers={**cors, "Cache-Control": "no-store"},
        )  # fmt: skip

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=16 * 1024)
    app.router.add_route("OPTIONS", CALLS, preflight)
    app.router.add_post(CALLS, start_call)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    return app


def _html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
