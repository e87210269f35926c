"""Where the operator itself may connect: spec.livekit.url is a tenant's string, and the operator
runs with cluster credentials inside the cluster network, so an address a tenant could not reach
(loopback, link-local and the cloud metadata service, private and shared ranges, the cluster's
own Services) is refused unless the operator's allow list (``--livekit-allowed-cidrs``) names it.

The check is made on every address the host name resolves to, before the request, and again by
the HTTP client's resolver on the connection itself (a name that resolves to a public address
first and to a private one later gains nothing).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(OSError):
    """A destination address outside the allow list."""


def parse_cidrs(text: str | Iterable[str]) -> tuple[Network, ...]:
    """``"10.96.0.0/12, 10.244.0.0/16"`` (or a list of them) → networks; a bare address is a
    /32 (/128). ValueError names the bad entry."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or CIDR: {item!r}") from exc
    return tuple(out)


def refused(ip: Address, allowed: Sequence[Network]) -> bool:
    """Whether the operator must not connect to ``ip``: anything not globally routable
    (loopback, private, link-local with 169.254.169.254, shared 100.64/10, unique-local and
    link-local IPv6, documentation, reserved) and multicast, unless ``allowed`` contains it."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip.version == net.version and ip in net for net in allowed):
        return False
    return not ip.is_global or ip.is_multicast


async def resolve(host: str, port: int) -> list[Address]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check_url(url: str, allowed: Sequence[Network]) -> str | None:
    """Why the operator must not contact ``url`` (a sentence naming the address), or None.
    A host that does not resolve is not refused here: the request reports it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = await resolve(host, parts.port or 443)
    except OSError:
        return None
    for ip in addresses:
        if refused(ip, allowed):
            return refusal(host, ip)
    return None


def refusal(host: str, ip: Address) -> str:
    via = "" if host == str(ip) else f" ({host} resolves to it)"
    return (
        f"address {ip}{via} is loopback, link-local, private or otherwise internal, and not in "
        "the operator's --livekit-allowed-cidrs"
    )


class CheckingResolver(AbstractResolver):
    """aiohttp resolver that refuses what ``refused`` refuses, on the connection itself."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self._allowed = tuple(allowed)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for r in results:
            ip = ipaddress.ip_address(r["host"])
            if refused(ip, self._allowed):
                raise AddressRefused(refusal(host, ip))
        return results

    async def close(self) -> None:
        await self._inner.close()


def checked_session(allowed: Sequence[Network], **kwargs: Any) -> aiohttp.ClientSession:
    """A client session whose connections go only where ``allowed`` permits."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=CheckingResolver(allowed)), **kwargs
    )
