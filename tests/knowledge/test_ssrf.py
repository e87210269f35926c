"""URL sources cannot reach internal addresses (SSRF): loopback, private, link-local, metadata
and the like are refused at every hop unless the operator's allow list names them, and no
credential of a URL ever reaches a message. Real HTTP servers on loopback; Redis where the
test indexes."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from kubevox_devenv.redis import free_port

from agent_runtime.knowledge import LocalEmbedder, Retriever, ingest
from agent_runtime.knowledge.ingest import read_documents
from agent_runtime.knowledge.netguard import (
    AddressPolicy,
    GuardedResolver,
    denied_reason,
    parse_cidrs,
    redact_url,
)

from .helpers import make_kb

LOOPBACK = AddressPolicy(parse_cidrs("127.0.0.0/8"))
ONLY_FIRST = AddressPolicy(parse_cidrs("127.0.0.1/32"))
PAGE = "<html><head><title>Shuttle</title></head><body><main><h1>Shuttle</h1>" \
       "<p>The airport shuttle leaves every 40 minutes.</p></main></body></html>"  # fmt: skip
GOOD = {"name": "checkin", "inline": "Check-in starts at 3 pm at the front desk."}


@dataclass
class Server:
    """A real HTTP server on a loopback address that counts the requests it got."""

    host: str
    port: int = 0
    hits: list[str] = field(default_factory=list)
    redirect_to: str = ""

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


async def _serve(server: Server) -> web.AppRunner:
    async def handler(request: web.Request) -> web.StreamResponse:
        server.hits.append(request.path_qs)
        if request.path.startswith("/redirect"):
            raise web.HTTPFound(server.redirect_to)
        if request.path == "/page.html":
            return web.Response(text=PAGE, content_type="text/html")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    server.port = free_port()
    await web.TCPSite(runner, server.host, server.port).start()
    return runner


@pytest.fixture
async def web1() -> AsyncIterator[Server]:
    server = Server("127.0.0.1")
    runner = await _serve(server)
    yield server
    await runner.cleanup()


@pytest.fixture
async def web2() -> AsyncIterator[Server]:
    """A second server, on 127.0.0.2: inside 127.0.0.0/8, outside 127.0.0.1/32."""
    server = Server("127.0.0.2")
    runner = await _serve(server)
    yield server
    await runner.cleanup()


async def errors_of(url: str, policy: AddressPolicy | None = None) -> list[tuple[str, str]]:
    kb = make_kb("kb-ssrf", [{"name": "web", "url": url}], limits={"fetchTimeoutSeconds": 3})
    _docs, failures = await read_documents(kb, None, policy)
    return [(f.source, f.message) for f in failures]


# --- with Redis: what gets indexed --------------------------------------------------------------


@pytest.mark.redis
async def test_loopback_is_refused_by_default_and_indexed_when_allowed(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str, web1: Server
) -> None:
    kb = make_kb(index_name, [GOOD, {"name": "shuttle", "url": f"{web1.base}/page.html"}])
    refused = await ingest(kb, client, embedder)
    assert not refused.ok
    ((source, message),) = [(e.source, e.message) for e in refused.source_errors]
    assert source == "shuttle"
    assert message == (
        f"GET {web1.base}/page.html: 127.0.0.1 is a loopback address; allowed only by the "
        "operator's allow list (--ingest-allowed-cidrs)"
    )
    assert web1.hits == []  # refused before any connection

    allowed = await ingest(kb, client, embedder, policy=LOOPBACK)
    assert allowed.ok, allowed
    assert web1.hits == ["/page.html"]
    top = await Retriever(client, index_name, embedder).retrieve("airport shuttle", 1)
    assert top[0].source == "shuttle"


# --- without Redis: what the fetch lets through -------------------------------------------------


async def test_redirect_from_an_allowed_server_to_a_denied_address_is_refused(
    web1: Server, web2: Server
) -> None:
    web1.redirect_to = f"{web2.base}/page.html"
    errors = await errors_of(f"{web1.base}/redirect", ONLY_FIRST)
    assert errors == [
        (
            "web",
            f"GET {web1.base}/redirect redirected to {web2.base}/page.html: 127.0.0.2 is "
            "a loopback address; allowed only by the operator's allow list "
            "(--ingest-allowed-cidrs)",
        )
    ]
    assert web1.hits == ["/redirect"]
    assert web2.hits == []
    # The same redirect is followed when the allow list covers both.
    assert await errors_of(f"{web1.base}/redirect", LOOPBACK) == []
    assert web2.hits == ["/page.html"]


async def test_redirect_to_the_metadata_address_is_refused(web1: Server) -> None:
    web1.redirect_to = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    ((_, message),) = await errors_of(f"{web1.base}/redirect", LOOPBACK)
    assert "169.254.169.254 is the cloud metadata address" in message


async def test_a_hostname_resolving_to_a_denied_address_is_refused(web1: Server) -> None:
    ((source, message),) = await errors_of(f"http://localhost:{web1.port}/page.html")
    assert source == "web"
    assert message.startswith(f"GET http://localhost:{web1.port}/page.html failed: localhost ")
    assert "is a loopback address; allowed only by the operator's allow list" in message
    assert web1.hits == []


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("[::1]", "::1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1 stands for 127.0.0.1, which is a loopback address"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address"),
        # 127.0.0.1 as one number, or shortened: not canonical, so never connected to.
        ("2130706433", "not a valid URL"),
        ("127.1", "not a valid URL"),
        ("0x7f.0.0.1", "resolves to 127.0.0.1, and 127.0.0.1 is a loopback address"),
        ("10.0.0.5", "10.0.0.5 is a private address"),
        ("100.64.1.1", "100.64.1.1 is a shared (CGNAT) address"),
        ("[fd00:ec2::254]", "fd00:ec2::254 is the cloud metadata address"),
    ],
)
async def test_internal_address_spellings_are_refused(host: str, why: str) -> None:
    ((_, message),) = await errors_of(f"http://{host}:{free_port()}/x")
    assert why in message
    assert "allowed only by the operator's allow list" in message or "valid" in why


async def test_refusals_do_not_tell_open_ports_from_closed_ones(web1: Server) -> None:
    """Refused: the same sentence whatever listens. Allowed: a closed port and an open one that
    does not speak HTTP read the same."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x00\xffnot http\r\n\r\n")
        await writer.drain()
        writer.close()

    raw = await asyncio.start_server(silent, "127.0.0.1", 0)
    raw_port = raw.sockets[0].getsockname()[1]
    closed = free_port()
    try:
        for policy in (None, LOOPBACK):
            seen = set()
            for port in (web1.port, raw_port, closed):
                if policy is not None and port == web1.port:
                    continue  # an allowed HTTP server answers: that is the point of allowing it
                ((_, message),) = await errors_of(f"http://127.0.0.1:{port}/x", policy)
                seen.add(message.replace(str(port), "PORT"))
            assert len(seen) == 1, seen
    finally:
        raw.close()
        await raw.wait_closed()


async def test_credentials_in_a_url_never_reach_a_message(web1: Server) -> None:
    secret_parts = ("s3cretpw", "tok-abc123", "frag-xyz")
    for policy, port in ((None, web1.port), (LOOPBACK, web1.port), (LOOPBACK, free_port())):
        url = f"http://bob:s3cretpw@127.0.0.1:{port}/missing?token=tok-abc123#frag-xyz"
        kb = make_kb("kb-creds", [{"name": "web", "url": url}])
        _docs, failures = await read_documents(kb, None, policy)
        assert failures, (policy, port)
        text = repr(failures)
        assert not any(s in text for s in secret_parts), text
        assert "?token=…" in text


# --- pure: the address policy --------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1", "127.1.2.3", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1",
        "169.254.169.254", "169.254.1.1", "fe80::1", "fc00::1", "fd00:ec2::254", "0.0.0.0", "::",
        "224.0.0.1", "ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1",
        "2002:a00:1::1", "240.0.0.1", "255.255.255.255",
    ],
)  # fmt: skip
def test_internal_addresses_are_denied(ip: str) -> None:
    assert denied_reason(ipaddress.ip_address(ip)) is not None
    assert AddressPolicy().refusal(ipaddress.ip_address(ip)) is not None


@pytest.mark.parametrize("ip", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_are_allowed(ip: str) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(ip)) is None


def test_allow_list_opens_only_its_networks() -> None:
    policy = AddressPolicy(parse_cidrs("10.20.0.0/16, 192.168.7.1"))
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("192.168.7.1")) is None
    assert "private" in str(policy.refusal(ipaddress.ip_address("10.21.0.1")))
    assert "metadata" in str(policy.refusal(ipaddress.ip_address("169.254.169.254")))
    with pytest.raises(ValueError, match=r"not a CIDR: '10\.0\.0\.0/33'"):
        parse_cidrs("10.0.0.0/33")


async def test_a_name_with_any_denied_address_is_refused_whole() -> None:
    """The connection is made to the addresses the resolver returns, so the check must hold for
    all of them: a public answer cannot smuggle a private one in."""

    class Answers(GuardedResolver):
        pass

    class Fixed:
        async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[Any]:
            return [
                {"hostname": host, "host": ip, "port": port, "family": 2, "proto": 6, "flags": 0}
                for ip in ("93.184.215.14", "10.0.0.7")
            ]

        async def close(self) -> None:
            return None

    resolver = Answers(AddressPolicy(), Fixed())  # type: ignore[arg-type]
    with pytest.raises(OSError, match=r"example\.test resolves to 10\.0\.0\.7, and 10\.0\.0\.7 is"):
        await resolver.resolve("example.test", 80)


def test_redact_url() -> None:
    assert redact_url("https://u:p@h.example:8443/a/b?x=1&tok=2#f") == (
        "https://h.example:8443/a/b?x=…&tok=…"
    )
    assert redact_url("http://[::1]:80/") == "http://[::1]:80/"


def test_ingest_command_takes_the_allow_list_from_flag_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse

    from agent_runtime.commands.ingest import add_arguments

    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser()
        add_arguments(p)  # reads the environment, as the process does at start
        return p

    monkeypatch.delenv("KUBEVOX_INGEST_ALLOWED_CIDRS", raising=False)
    assert parser().parse_args(["-f", "kb.yaml"]).allowed_cidrs == ()
    monkeypatch.setenv("KUBEVOX_INGEST_ALLOWED_CIDRS", "10.20.0.0/16,192.168.7.1/32")
    assert parser().parse_args(["-f", "kb.yaml"]).allowed_cidrs == parse_cidrs(
        "10.20.0.0/16 192.168.7.1/32"
    )
    flag = parser().parse_args(["-f", "kb.yaml", "--allowed-cidrs", "127.0.0.0/8"])
    assert flag.allowed_cidrs == parse_cidrs("127.0.0.0/8")
    with pytest.raises(SystemExit):
        parser().parse_args(["-f", "kb.yaml", "--allowed-cidrs", "10.0.0.0/33"])
