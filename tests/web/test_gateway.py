"""The web gateway's endpoint and page (agent_runtime/web), over real HTTP on a local port:
who may start a call, what the token grants, and the refusals, each with its status code. The
call through LiveKit with such a token is in test_browser_call.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from kubevox_api.voiceagent_web import WebAccess
from livekit import api

from agent_runtime.web.gateway import Gateway, build_app

KEY, SECRET = "devkey", "a-secret-long-enough-for-hs256-signing"
SITE = "https://www.clinic.example"
Make = Callable[..., Any]


def gateway(**web: Any) -> Gateway:
    shared_key = web.pop("shared_key", None)
    return Gateway(
        agent_name="clinic.front-desk",
        title="Maple <Clinic>",
        livekit_url="wss://livekit.clinic.example",
        api_key=KEY,
        api_secret=SECRET,
        web=WebAccess.model_validate(web),
        shared_key=shared_key,
    )


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    clients: list[TestClient] = []

    async def _make(**web: Any) -> TestClient:
        client = TestClient(TestServer(build_app(gateway(**web))))
        await client.start_server()
        clients.append(client)
        return client

    yield _make
    for c in clients:
        await c.close()


async def test_a_call_gets_a_token_for_one_new_room_with_the_agent_dispatched(make: Make) -> None:
    client = await make(
        allowedOrigins=[SITE], metadataKeys=["customerId"], tokenLifetimeSeconds=120
    )
    resp = await client.post(
        "/v1/calls", json={"metadata": {"customerId": "C-42"}}, headers={"Origin": SITE}
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    assert resp.headers["Cache-Control"] == "no-store"
    call = await resp.json()
    assert call["url"] == "wss://livekit.clinic.example"
    claims = api.TokenVerifier(KEY, SECRET).verify(call["token"])
    assert claims.video is not None
    assert claims.video.room == call["room"]
    assert call["room"].startswith("web-")
    assert claims.video.room_join
    assert not claims.video.room_admin
    assert not claims.video.room_list
    assert claims.identity == call["identity"]
    assert claims.room_config is not None
    (dispatch,) = claims.room_config.agents
    assert dispatch.agent_name == "clinic.front-desk"
    assert json.loads(dispatch.metadata) == {"caller": {"customerId": "C-42"}}

    again = await (await client.post("/v1/calls", headers={"Origin": SITE})).json()
    assert again["room"] != call["room"]  # every call its own room


async def test_other_sites_are_refused_and_the_own_page_is_allowed(make: Make) -> None:
    client = await make(allowedOrigins=[SITE])
    other = await client.post("/v1/calls", headers={"Origin": "https://evil.example"})
    assert other.status == 403
    assert "allowedOrigins" in (await other.json())["error"]
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = await client.options("/v1/calls", headers={"Origin": "https://evil.example"})
    assert preflight.status == 403
    ok = await client.options("/v1/calls", headers={"Origin": SITE})
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Methods"] == "POST"
    own = f"http://{client.server.host}:{client.server.port}"  # the gateway's own page
    assert (await client.post("/v1/calls", headers={"Origin": own})).status == 201
    anyone = await make(allowedOrigins=["*"])
    assert (await anyone.post("/v1/calls", headers={"Origin": "https://x.example"})).status == 201


async def test_a_shared_key_is_required_when_set(make: Make) -> None:
    client = await make(shared_key="k-123")
    missing = await client.post("/v1/calls")
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = await client.post("/v1/calls", headers={"Authorization": "Bearer k-124"})
    assert wrong.status == 401
    right = await client.post("/v1/calls", headers={"Authorization": "Bearer k-123"})
    assert right.status == 201


async def test_past_the_rate_limit_calls_are_refused_with_retry_after(make: Make) -> None:
    client = await make(rateLimit={"callsPerMinute": 6, "burst": 2})
    assert [(await client.post("/v1/calls")).status for _ in range(2)] == [201, 201]
    refused = await client.post("/v1/calls")
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 10  # one call every 10 s


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"metadata": {"accountPassword": "x"}}, "'accountPassword' is not in spec.web"),
        ({"metadata": {"customerId": 42}}, "must be a string"),
        ({"metadata": {"customerId": "x" * 257}}, "at most 256"),
        ({"metadata": ["customerId"]}, "must be an object"),
        ([1, 2], "must be a JSON object"),
    ],
)
async def test_metadata_the_spec_does_not_list_is_refused(
    make: Make, body: Any, message: str
) -> None:
    client = await make(metadataKeys=["customerId"])
    resp = await client.post("/v1/calls", json=body)
    assert resp.status == 400
    assert message in (await resp.json())["error"]


async def test_the_page_and_the_browser_sdk_are_served(make: Make) -> None:
    client = await make()
    page = await client.get("/")
    assert page.status == 200
    html = await page.text()
    assert '<h1 id="title">Maple &lt;Clinic&gt;</h1>' in html  # escaped
    assert 'src="static/vendor/livekit-client.umd.js"' in html
    sdk = await client.get("/static/vendor/livekit-client.umd.js")
    assert sdk.status == 200
    assert "LivekitClient" in (await sdk.text())[:400]
    assert (await client.get("/static/call.js")).status == 200
    assert (await client.get("/static/../gateway.py")).status in (403, 404)
    assert (await client.get("/healthz")).status == 200
