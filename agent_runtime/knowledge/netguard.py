"""Which addresses a URL source may reach (SSRF guard), and how a URL is shown without secrets.

A KnowledgeBase is written by a tenant, and its ingestion Job runs inside the cluster: without a
guard, a ``url`` source could read the cloud metadata service, the cluster's own Services or a
private network, and the status would tell the tenant what answered. Every address a fetch
connects to — the first URL's and every redirect's — is checked here; addresses in the
operator's allow list (``--ingest-allowed-cidrs``) are let through.

The check happens in the resolver the HTTP client connects with, so the address checked is the
address connected to: a name that resolves to a public address for the check and to a private
one for the connection (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from kubevox_api import contract

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_CIDRS_ENV = contract.INGEST_ALLOWED_CIDRS_ENV

# Checked in order; the first match names the reason. The metadata addresses come before the
# ranges that contain them, so the message says what the address really is.
_DENIED: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "the cloud metadata address"),
    ("fd00:ec2::254/128", "the cloud metadata address"),
    ("0.0.0.0/8", "an unspecified address"),
    ("::/128", "an unspecified address"),
    ("127.0.0.0/8", "a loopback address"),
    ("::1/128", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("fe80::/10", "a link-local address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("fc00::/7", "a private address"),
    ("100.64.0.0/10", "a shared (CGNAT) address"),
    ("224.0.0.0/4", "a multicast address"),
    ("ff00::/8", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("255.255.255.255/32", "a broadcast address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("198.18.0.0/15", "a benchmarking address"),
)
_DENIED_NETS = tuple((ipaddress.ip_network(n), why) for n, why in _DENIED)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_cidrs(text: str | Iterable[str] | None) -> tuple[IPNetwork, ...]:
    """``"10.1.0.0/16, 192.168.5.7"`` (commas or spaces) → networks; ValueError names a bad one."""
    if text is None:
        return ()
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    nets = []
    for item in items:
        try:
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR: {item!r}") from None
    return tuple(nets)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def denied_reason(ip: IPAddress) -> str | None:
    """Why the address is off limits by default (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        v4 = _embedded_v4(ip)
        if v4 is not None:
            return denied_reason(v4)
    for net, why in _DENIED_NETS:
        if ip.version == net.version and ip in net:
            return why
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Default deny of internal addresses, with the operator's allow list on top."""

    allowed: tuple[IPNetwork, ...] = ()

    def refusal(self, ip: IPAddress) -> str | None:
        """None when ``ip`` may be contacted, else the sentence saying why not."""
        why = denied_reason(ip)
        if why is None:
            return None
        v4 = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        candidates: list[IPAddress] = [ip] if v4 is None else [ip, v4]
        if any(c.version == n.version and c in n for c in candidates for n in self.allowed):
            return None
        what = f"{ip} stands for {v4}, which is" if v4 is not None else f"{ip} is"
        return f"{what} {why}; allowed only by the operator's allow list (--ingest-allowed-cidrs)"


class AddressRefused(OSError):
    """A URL's host is, or resolves to, an address the policy refuses."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_literal(host: str, policy: AddressPolicy) -> None:
    """Hosts written as IP addresses never reach the resolver; check them here."""
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return
    reason = policy.refusal(ip)
    if reason:
        raise AddressRefused(reason)


@dataclass
class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, and refuses a name if any of its addresses is
    refused: the client then connects only to addresses that passed the check."""

    policy: AddressPolicy
    inner: AbstractResolver = field(default_factory=DefaultResolver)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        check_literal(host, self.policy)
        results = await self.inner.resolve(host, port, family)
        for res in results:
            ip = ipaddress.ip_address(str(res["host"]).split("%")[0])
            reason = self.policy.refusal(ip)
            if reason:
                raise AddressRefused(f"{host} resolves to {ip}, and {reason}")
        return results

    async def close(self) -> None:
        await self.inner.close()


def redact_url(url: str) -> str:
    """The URL without what may be a secret: no user or password, no query values, no fragment.
    ``https://user:pw@host/p?token=x`` → ``https://host/p?token=…``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = ""
    if parts.query:
        keys = [p.split("=", 1)[0] for p in parts.query.split("&") if p]
        query = "?" + "&".join(f"{k}=…" for k in keys)
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def exception_chain(exc: BaseException) -> Sequence[Any]:
    """The exception, its ``os_error`` (aiohttp's connector errors) and causes, outermost first."""
    seen: list[Any] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = getattr(cur, "os_error", None) or cur.__cause__ or cur.__context__
    return seen
