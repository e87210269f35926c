"""Reading a KnowledgeBase's sources: inline text, mounted ConfigMap/Secret files, http(s) URLs.

The ingestion Job mounts each referenced ConfigMap at ``<sources-dir>/configmap/<name>/`` and
each Secret at ``<sources-dir>/secret/<name>/`` (one file per key), so this module never talks
to the Kubernetes API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from kubevox_operator.api import Source

from .errors import SourceError
from .models import RawDocument


@dataclass(frozen=True)
class SourceLimits:
    max_bytes: int = 20 * 1024 * 1024
    fetch_timeout: float = 30.0


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
) -> list[RawDocument]:
    """The documents of one source; raises :class:`SourceError` naming it."""
    if source.inline is not None:
        data = source.inline.encode()
        _check_size(name, len(data), limits)
        return [RawDocument(name, name, data, source.format, "text/plain", source.title)]
    if source.config_map is not None:
        sel = source.config_map
        return _read_mounted(name, source, sources_dir, "configmap", sel.name, sel.key, limits)
    if source.secret is not None:
        sel2 = source.secret
        return _read_mounted(name, source, sources_dir, "secret", sel2.name, sel2.key, limits)
    if source.url is not None:
        return [await _fetch(name, source, source.url, limits, session)]
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
        _check_size(f"{name}/{path.name}" if key is None else name, path.stat().st_size, limits)
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
) -> RawDocument:
    own = session is None
    sess = session or aiohttp.ClientSession()
    timeout = aiohttp.ClientTimeout(total=limits.fetch_timeout)
    try:
        async with sess.get(url, timeout=timeout, allow_redirects=True) as resp:
            if resp.status >= 400:
                raise SourceError(name, f"GET {url} answered HTTP {resp.status}")
            if resp.content_length is not None:
                _check_size(name, resp.content_length, limits)
            buf = bytearray()
            async for block in resp.content.iter_chunked(65536):
                buf += block
                _check_size(name, len(buf), limits)
            ctype = resp.headers.get("Content-Type")
    except SourceError:
        raise
    except TimeoutError:
        raise SourceError(name, f"GET {url} timed out after {limits.fetch_timeout:g}s") from None
    except aiohttp.ClientError as exc:
        raise SourceError(name, f"GET {url} failed: {exc or type(exc).__name__}") from None
    finally:
        if own:
            await sess.close()
    doc_name = urlsplit(url).path.rsplit("/", 1)[-1] or url
    return RawDocument(name, doc_name, bytes(buf), source.format, ctype, source.title)
