"""Bad input never takes the live index down: each failure names its source, and the previous
version keeps answering."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubevox_devenv.redis import free_port

from agent_runtime.knowledge import LocalEmbedder, Retriever, connect, ingest
from agent_runtime.knowledge.ingest import read_documents
from agent_runtime.knowledge.netguard import AddressPolicy, parse_cidrs
from agent_runtime.knowledge.store import key_prefix, versions_key

from .helpers import (
    CuttableProxy,
    make_kb,
    pdf_bomb,
    pdf_with_broken_trailer,
    pdf_with_text,
    pdf_without_text,
)

pytestmark = pytest.mark.redis

GOOD = {"name": "checkin", "inline": "Check-in starts at 3 pm at the front desk."}
LIMITS = {"maxSourceBytes": 4096, "fetchTimeoutSeconds": 1}
# The test HTTP server listens on loopback, which URL sources may reach only when the operator's
# allow list says so (see test_ssrf.py).
LOOPBACK = AddressPolicy(parse_cidrs("127.0.0.0/8"))


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
        make_kb(index_name, [GOOD, bad], limits=LIMITS),
        client,
        embedder,
        sources_dir=tmp_path,
        policy=LOOPBACK,
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
    result = await ingest(
        make_kb(index_name, [GOOD, bad]), client, embedder, allow_partial=True, policy=LOOPBACK
    )
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
    result = await ingest(
        make_kb(index_name, sources), client, embedder, sources_dir=tmp_path, policy=LOOPBACK
    )
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
    own = (":meta", ":versions", ":owner")
    assert all(k.decode().startswith(key_prefix(index_name, live_version)) or
               k.decode().endswith(own) for k in leftovers)  # fmt: skip


# --- hostile documents ---------------------------------------------------------------------------

# Each: (file, its bytes, the error its source gets, or None when it must simply be indexed).
# Before the fix, the deep <div>s raised RecursionError out of the whole ingestion, the heading
# took 36 s to read, the emphasis 10 s, the broken PDF's AttributeError escaped.
HOSTILE: dict[str, tuple[str, bytes, str | None]] = {
    "nested-divs": ("deep.html", b"<html><body>" + b"<div>" * 3000 + b"Spa opens at 7."
                    + b"</div>" * 3000 + b"</body></html>", None),
    "nested-divs-100k": ("deeper.html", b"<html><body>" + b"<div>" * 100_000 + b"x"
                         + b"</div>" * 100_000 + b"</body></html>",
                         "HTML nests elements more than 5000 deep"),
    "heading-backtracking": ("slow.md", b"# Spa" + b" " * 3000 + b"x\n\nThe spa opens at 7.",
                             None),
    "emphasis-backtracking": ("emph.md", b"# Spa\n\n" + b"*a " * 20_000, None),
    "pdf-broken-trailer": ("broken.pdf", pdf_with_broken_trailer(),
                           "is not a readable PDF: AttributeError"),
    "pdf-decompression-bomb": ("bomb.pdf", pdf_bomb(), "PDF refused: it exceeds a safety limit"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_document_is_its_own_sources_error_and_quick(
    case: str, tmp_path: Path
) -> None:
    """Read on its own: a named error (or the document), never an exception out of the run.
    The bound is loose (5 s) on purpose: timing belongs to bench/; measured times are in
    docs/security/ingestion.md."""
    file, data, expected = HOSTILE[case]
    mount(tmp_path, "configmap", "hostile", {file: data})
    kb = make_kb("kb-hostile", [{"name": "hostile", "configMap": {"name": "hostile"}}],
                 limits={"maxSourceBytes": 4 * 1024 * 1024})  # fmt: skip
    started = time.monotonic()
    docs, failures = await read_documents(kb, tmp_path)
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"{case} took {elapsed:.1f}s"
    if expected is None:
        assert failures == []
        assert [d.name for d in docs] == [file]
    else:
        assert docs == []
        assert [f.source for f in failures] == [f"hostile/{file}"]
        assert expected in failures[0].message


async def test_hostile_documents_leave_the_other_sources_indexed(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str, tmp_path: Path
) -> None:
    """All hostile documents in one knowledge base, with a good source: every failing one is
    named, and the rest is indexed and answers (partial ingestion)."""
    small = {k: v for k, v in HOSTILE.items() if k != "emphasis-backtracking"}  # 400 passages
    mount(tmp_path, "configmap", "hostile", {file: data for file, data, _ in small.values()})
    sources = [GOOD, {"name": "hostile", "configMap": {"name": "hostile"}}]
    kb = make_kb(index_name, sources, limits={"maxSourceBytes": 4 * 1024 * 1024})
    started = time.monotonic()
    result = await ingest(kb, client, embedder, sources_dir=tmp_path, allow_partial=True)
    assert time.monotonic() - started < 30
    assert result.ok, result
    failed = {e.source: e.message for e in result.source_errors}
    assert set(failed) == {f"hostile/{f}" for f, _, exp in small.values() if exp}
    assert result.documents == 3  # checkin, deep.html, slow.md
    retriever = Retriever(client, index_name, embedder)
    assert (await retriever.retrieve("when can I check in?", 1))[0].source == "checkin"
    spa = await retriever.retrieve("when does the spa open?", 2, sources=["hostile"])
    assert {c.document for c in spa} == {"deep.html", "slow.md"}

    # Without partial ingestion the run fails, naming every bad document, and nothing crashes.
    strict = await ingest(kb, client, embedder, sources_dir=tmp_path)
    assert not strict.ok
    assert {e.source for e in strict.source_errors} == set(failed)
    assert "hostile" in strict.message


async def test_sources_share_one_byte_budget(tmp_path: Path) -> None:
    """Past the budget of all sources together, the next source is refused by name."""
    mount(tmp_path, "configmap", "a", {"a.txt": b"alpha " * 300})
    mount(tmp_path, "configmap", "b", {"b.txt": b"bravo " * 300})
    sources = [{"name": n, "configMap": {"name": n, "key": f"{n}.txt"}} for n in ("a", "b")]
    kb = make_kb("kb-budget", sources)
    docs, failures = await read_documents(kb, tmp_path, max_total_bytes=3000)
    assert [d.source for d in docs] == ["a"]
    assert [f.source for f in failures] == ["b"]
    assert "total budget of 3000 bytes" in failures[0].message
