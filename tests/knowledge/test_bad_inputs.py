"""Bad input never takes the live index down: each failure names its source, and the previous
version keeps answering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubevox_devenv.redis import free_port

from agent_runtime.knowledge import LocalEmbedder, Retriever, connect, ingest
from agent_runtime.knowledge.store import key_prefix, versions_key

from .helpers import CuttableProxy, make_kb, pdf_with_text, pdf_without_text

pytestmark = pytest.mark.redis

GOOD = {"name": "checkin", "inline": "Check-in starts at 3 pm at the front desk."}
LIMITS = {"maxSourceBytes": 4096, "fetchTimeoutSeconds": 1}


def mount(root: Path, kind: str, name: str, files: dict[str, bytes]) -> None:
    """Lay files out as the ingestion Job mounts a ConfigMap or Secret."""
    d = root / kind / name
    d.mkdir(parents=True, exist_ok=True)
    for key, data in files.items():
        (d / key).write_bytes(data)


BAD_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "unreachable-url": ({"name": "menu", "url": "http://127.0.0.1:{dead}/menu.html"},
                        "GET http://127.0.0.1:{dead}/menu.html failed"),
    "http-404": ({"name": "menu", "url": "{http}/missing.html"}, "answered HTTP 404"),
    "slow-url": ({"name": "menu", "url": "{http}/slow"}, "timed out after 1s"),
    "url-over-limit": ({"name": "menu", "url": "{http}/big"}, "over the limit of 4096 bytes"),
    "binary-file": ({"name": "menu", "configMap": {"name": "docs", "key": "menu.bin"}},
                    "looks binary"),
    "empty-file": ({"name": "menu", "configMap": {"name": "docs", "key": "empty.md"}},
                   "is empty"),
    "pdf-no-text": ({"name": "menu", "secret": {"name": "private", "key": "scan.pdf"}},
                    "PDF has no text layer"),
    "file-over-limit": ({"name": "menu", "configMap": {"name": "docs", "key": "huge.txt"}},
                        "over the limit of 4096 bytes"),
    "missing-key": ({"name": "menu", "configMap": {"name": "docs", "key": "nope.md"}},
                    "has no key 'nope.md'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_CASES))
async def test_bad_source_is_named_and_old_version_keeps_answering(
    case: str,
    client: aioredis.Redis,
    embedder: LocalEmbedder,
    index_name: str,
    http_base: str,
    tmp_path: Path,
) -> None:
    mount(tmp_path, "configmap", "docs", {
        "menu.bin": bytes(range(256)) * 4, "empty.md": b"", "huge.txt": b"spa " * 2000,
    })  # fmt: skip
    mount(tmp_path, "secret", "private", {"scan.pdf": pdf_without_text()})
    first = await ingest(make_kb(index_name, [GOOD], limits=LIMITS), client, embedder)
    assert first.ok

    spec, expected = BAD_CASES[case]
    fill = {"dead": free_port(), "http": http_base}
    bad = {k: (v.format(**fill) if isinstance(v, str) else v) for k, v in spec.items()}
    result = await ingest(
        make_kb(index_name, [GOOD, bad], limits=LIMITS), client, embedder, sources_dir=tmp_path
    )
    assert not result.ok
    assert [e.source.split("/")[0] for e in result.source_errors] == ["menu"]
    assert expected.format(**fill) in result.source_errors[0].message
    assert "menu" in result.message
    assert first.active_index in result.message
    assert result.active_index == first.active_index
    assert result.content_hash == first.content_hash

    top = await Retriever(client, index_name, embedder).retrieve("when can I check in?", 1)
    assert top
    assert top[0].source == "checkin"


async def test_partial_ingestion_indexes_the_good_sources_when_allowed(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    bad = {"name": "menu", "url": f"http://127.0.0.1:{free_port()}/menu"}
    result = await ingest(make_kb(index_name, [GOOD, bad]), client, embedder, allow_partial=True)
    assert result.ok
    assert result.chunks == 1
    assert [e.source for e in result.source_errors] == ["menu"]


async def test_mounted_configmap_and_pdf_and_url_sources(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str, http_base: str, tmp_path: Path
) -> None:
    mount(tmp_path, "configmap", "guide", {
        "spa.md": b"# Spa\n\nThe sauna is open until 9 pm.", "..data": b"ignored",
    })  # fmt: skip
    mount(tmp_path, "secret", "private", {"pool.pdf": pdf_with_text(["The pool opens at 6 am."])})
    sources = [
        {"name": "guide", "configMap": {"name": "guide"}},
        {"name": "pool", "secret": {"name": "private", "key": "pool.pdf"}},
        {"name": "shuttle", "url": f"{http_base}/page.html"},
    ]
    result = await ingest(make_kb(index_name, sources), client, embedder, sources_dir=tmp_path)
    assert result.ok, result
    assert result.documents == 3, result
    retriever = Retriever(client, index_name, embedder)
    for question, source in [("until when is the sauna open", "guide"),
                             ("what time does the pool open", "pool"),
                             ("how often does the airport shuttle leave", "shuttle")]:  # fmt: skip
        top = await retriever.retrieve(question, 1)
        assert top[0].source == source, (question, top)
    shuttle = (await retriever.retrieve("airport shuttle", 1, sources=["shuttle"]))[0]
    assert shuttle.title == "Shuttle service"
    assert "Menu navigation" not in shuttle.text


async def test_redis_outage_mid_write_keeps_old_version_and_cleans_up(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str, proxy: CuttableProxy
) -> None:
    first = await ingest(make_kb(index_name, [GOOD]), client, embedder)
    big = [GOOD, {"name": "faq", "inline": "\n\n".join(
        f"Answer {i}: the minibar item {i} costs {i} euros." for i in range(150))}]  # fmt: skip
    kb2 = make_kb(index_name, big, chunking={"sizeTokens": 32, "overlapTokens": 0})

    via_proxy = connect(proxy.url, retries=1, socket_timeout=2)
    proxy.cut_after = proxy.forwarded + 60_000  # past FT.CREATE, in the middle of the HSETs
    result = await ingest(kb2, via_proxy, embedder)
    assert not result.ok
    assert "Redis" in result.message
    assert f"{first.active_index} stays live" in result.message
    await via_proxy.aclose()

    # Redis itself kept everything: the old version answers, the cut-off one is still registered.
    top = await Retriever(client, index_name, embedder).retrieve("when is check-in?", 1)
    assert top[0].source == "checkin"
    stale = {v.decode() for v in await client.smembers(versions_key(index_name))}  # type: ignore[misc]
    live_version = str(first.active_index).rsplit("--", 1)[1]
    partial = stale - {live_version}
    assert len(partial) == 1
    assert [k async for k in client.scan_iter(f"{key_prefix(index_name, partial.pop())}*")]

    # Connectivity back: the next run (unchanged content) removes the partial version.
    await proxy.restore()
    via_proxy = connect(proxy.url)
    again = await ingest(make_kb(index_name, [GOOD]), via_proxy, embedder)
    await via_proxy.aclose()
    assert again.ok
    assert not again.changed
    assert {v.decode() for v in await client.smembers(versions_key(index_name))} == {  # type: ignore[misc]
        live_version
    }
    leftovers = [k async for k in client.scan_iter(f"kv:{index_name}:*")]
    assert all(k.decode().startswith(key_prefix(index_name, live_version)) or
               k.decode().endswith((":meta", ":versions")) for k in leftovers)  # fmt: skip
