"""Reading a KnowledgeBase's sources: inline text, mounted ConfigMap/Secret files, http(s) URLs.

The ingestion Job mounts each referenced ConfigMap at ``<sources-dir>/configmap/<name>/`` and
each Secret at ``<sources-dir>/secret/<name>/`` (one file per key), so this module never talks
to the Kubernetes API.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
from kubevox_api import Source
from yarl import URL

from .errors import SourceError
from .models import RawDocument
from .netguard import (
    AddressPolicy,
    AddressRefused,
    GuardedResolver,
    check_literal,
    exception_chain,
    redact_url,
)

MAX_REDIRECTS = 10
_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class SourceLimits:
    max_bytes: int = 20 * 1024 * 1024
    fetch_timeout: float = 30.0
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    """Which addresses URL sources may reach (the operator's allow list on top of default deny)."""
    max_total_bytes: int = 256 * 1024 * 1024
    """All sources of one ingestion together: the Job's memory holds them all at once."""
    concurrency: int = 4
    """Sources read at the same time."""


class ByteBudget:
    """The bytes all sources of one ingestion may still use; shared by concurrent reads."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def take(self, name: str, size: int) -> None:
        if size > self.left:
            raise SourceError(
                name,
                f"does not fit in what is left of the total budget of {self.total} bytes "
                "for all sources of this knowledge base",
            )
        self.left -= size


def guarded_session(policy: AddressPolicy) -> aiohttp.ClientSession:
    """An HTTP client that connects only to addresses the policy allows. No proxy from the
    environment (trust_env is off): the check must see the real destination."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=GuardedResolver(policy)))


def source_name(source: Source, index: int) -> str:
    """The name a source goes by in status, errors, filters and citations."""
    if source.name:
        return source.name
    if source.config_map is not None:
        key = f"-{source.config_map.key}" if source.config_map.key else ""
        return _slug(f"configmap-{source.config_map.name}{key}")
    if source.secret is not None:
        return _slug(f"secret-{source.secret.name}-{source.secret.key}")
    if source.url is not None:
        parts = urlsplit(source.url)
        return _slug(f"{parts.hostname or 'url'}{parts.path}") or f"url-{index}"
    return f"inline-{index}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:63]


async def resolve(
    source: Source,
    name: str,
    sources_dir: Path | None,
    limits: SourceLimits,
    session: aiohttp.ClientSession | None = None,
    budget: ByteBudget | None = None,
) -> list[RawDocument]:
    """The documents of one source; raises :class:`SourceError` naming it."""
    budget = budget or ByteBudget(limits.max_total_bytes)
    if source.inline is not None:
        data = source.inline.encode()
        _check_size(name, len(data), limits)
        budget.take(name, len(data))
        return [RawDocument(name, name, data, source.format, "text/plain", source.title)]
    if source.config_map is not None:
        sel = source.config_map
        return _read_mounted(
            name, source, sources_dir, "configmap", sel.name, sel.key, limits, budget
        )
    if source.secret is not None:
        sel2 = source.secret
        return _read_mounted(
            name, source, sources_dir, "secret", sel2.name, sel2.key, limits, budget
        )
    if source.url is not None:
        return [await _fetch(name, source, source.url, limits, session, budget)]
    raise SourceError(name, "sets none of inline, configMap, secret or url")


def _check_size(name: str, size: int, limits: SourceLimits) -> None:
    if size > limits.max_bytes:
        raise SourceError(name, f"is {size} bytes, over the limit of {limits.max_bytes} bytes")


def _read_mounted(
    name: str,
    source: Source,
    sources_dir: Path | None,
    kind: str,
    obj: str,
    key: str | None,
    limits: SourceLimits,
    budget: ByteBudget,
) -> list[RawDocument]:
    label = "ConfigMap" if kind == "configmap" else "Secret"
    if sources_dir is None:
        raise SourceError(name, f"{label} {obj!r} needs --sources-dir (where it is mounted)")
    base = sources_dir / kind / obj
    if not base.is_dir():
        raise SourceError(name, f"{label} {obj!r} is not mounted at {base}")
    if key is not None:
        paths = [base / key]
        if not paths[0].is_file():
            raise SourceError(name, f"{label} {obj!r} has no key {key!r}")
    else:
        # Kubernetes mounts keys as symlinks next to hidden ``..data`` directories.
        paths = sorted(p for p in base.iterdir() if not p.name.startswith("..") and p.is_file())
        if not paths:
            raise SourceError(name, f"{label} {obj!r} has no keys")
    docs = []
    for path in paths:
        where = f"{name}/{path.name}" if key is None else name
        _check_size(where, path.stat().st_size, limits)
        budget.take(where, path.stat().st_size)
        docs.append(
            RawDocument(name, path.name, path.read_bytes(), source.format, None, source.title)
        )
    return docs


async def _fetch(
    name: str,
    source: Source,
    url: str,
    limits: SourceLimits,
    session: aiohttp.ClientSession | None,
    budget: ByteBudget,
) -> RawDocument:
    own = session is None
    sess = session or guarded_session(limits.policy)
    shown = redact_url(url)
    try:
        # One deadline for the whole fetch, redirects included.
        async with asyncio.timeout(limits.fetch_timeout):
            return await _follow(name, source, url, limits, sess, budget)
    except TimeoutError:
        raise SourceError(name, f"GET {shown} timed out after {limits.fetch_timeout:g}s") from None
    finally:
        if own:
            await sess.close()


async def _follow(
    name: str,
    source: Source,
    url: str,
    limits: SourceLimits,
    sess: aiohttp.ClientSession,
    budget: ByteBudget,
) -> RawDocument:
    """GET, following redirects by hand so every hop's address is checked."""
    first, current = redact_url(url), url
    for _ in range(MAX_REDIRECTS + 1):
        hop = redact_url(current)
        what = f"GET {first}" if current == url else f"GET {first} redirected to {hop}"
        try:
            # The host as aiohttp will see it (yarl's parse, not urllib's): an IP literal skips
            # the resolver, so it is checked here.
            check_literal(URL(current).raw_host or "", limits.policy)
            async with sess.get(current, allow_redirects=False) as resp:
                location = resp.headers.get("Location")
                if resp.status in _REDIRECTS and location:
                    current = urljoin(current, location)
                    if urlsplit(current).scheme not in ("http", "https"):
                        raise SourceError(
                            name, f"GET {first} redirected to a non-HTTP URL: {redact_url(current)}"
                        )
                    continue
                if resp.status >= 400:
                    raise SourceError(name, f"{what} answered HTTP {resp.status}")
                data = await _read_body(name, resp, limits, budget)
                ctype = resp.headers.get("Content-Type")
        except AddressRefused as exc:
            raise SourceError(name, f"{what}: {exc.reason}") from None
        except aiohttp.ClientError as exc:
            raise SourceError(name, f"{what} failed: {_client_error(exc)}") from None
        except ValueError:  # an unparseable URL or port in a Location header
            raise SourceError(name, f"{what} failed: not a valid URL") from None
        doc_name = urlsplit(current).path.rsplit("/", 1)[-1] or urlsplit(current).hostname or name
        return RawDocument(name, doc_name, data, source.format, ctype, source.title)
    raise SourceError(name, f"GET {first} redirected more than {MAX_REDIRECTS} times")


async def _read_body(
    name: str, resp: aiohttp.ClientResponse, limits: SourceLimits, budget: ByteBudget
) -> bytes:
    if resp.content_length is not None:
        _check_size(name, resp.content_length, limits)
    buf = bytearray()
    async for block in resp.content.iter_chunked(65536):
        buf += block
        _check_size(name, len(buf), limits)
        budget.take(name, len(block))
    return bytes(buf)


def _client_error(exc: aiohttp.ClientError) -> str:
    """A cause that says what to fix without telling a closed port from an open one that does
    not speak HTTP (refused, reset and garbage all read the same), and never the URL itself
    (aiohttp's messages carry it, query and credentials included)."""
    for cause in exception_chain(exc):
        if isinstance(cause, AddressRefused):
            return cause.reason
    if isinstance(exc, aiohttp.InvalidURL):
        # e.g. 2130706433 or 127.1 for 127.0.0.1: refused by the client, never connected to.
        return "not a valid URL (a host must be a name or a canonical IP address)"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS failed (certificate or handshake)"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects"
    return "no HTTP answer (cannot connect, connection reset, or not an HTTP server)"
