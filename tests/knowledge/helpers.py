"""Test helpers: ``kubevox-agent`` as a subprocess, KnowledgeBase builders, a small hotel
knowledge base and its questions, a cuttable TCP proxy (a Redis outage seen from the client
while the server keeps its data), tiny PDFs, and the retrieval evaluation's module
(bench/knowledge_eval.py)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from kubevox_api import KnowledgeBase


def cli(
    *args: str, env: dict[str, str], stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``kubevox-agent ARGS`` as a platform team or the ingestion Job runs it."""
    return subprocess.run([sys.executable, "-m", "agent_runtime.cli", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=timeout)  # fmt: skip


HOTEL = [
    {"name": "breakfast", "inline": "# Breakfast\n\nBreakfast is served from 7 to 10 am in the "
     "garden room. Vegan and gluten-free options are available on request."},
    {"name": "parking", "inline": "# Parking\n\nGuests park in the garage on level -2 for 18 euros "
     "per night. Electric cars can charge at the four wallboxes near the exit."},
    {"name": "wifi", "inline": "# Internet\n\nThe wifi network is called HotelGuest and the "
     "password is printed on your key card sleeve."},
]  # fmt: skip
HOTEL_QUESTIONS = {
    "where can I charge my electric car?": "parking",
    "what's the wifi password": "wifi",
    "is there something vegan in the morning?": "breakfast",
}
"""Questions about HOTEL and the source that answers each."""


def bench_module() -> ModuleType:
    """bench/knowledge_eval.py (bench/ is no package): its evaluation sets and runs."""
    path = Path(__file__).resolve().parents[2] / "bench/knowledge_eval.py"
    spec = importlib.util.spec_from_file_location("knowledge_eval", path)
    assert spec
    assert spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_kb(index: str, sources: list[dict[str, Any]], **spec: Any) -> KnowledgeBase:
    body: dict[str, Any] = {
        "sources": sources,
        "store": {"redisUrlSecretRef": {"name": "redis", "key": "url"}, "indexName": index},
        **spec,
    }
    return KnowledgeBase.model_validate({"metadata": {"name": index}, "spec": body})


class CuttableProxy:
    """Forwards 127.0.0.1:port to Redis; after ``cut_after`` client bytes it drops every
    connection and refuses new ones until :meth:`restore`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_after: int | None = None
        self.forwarded = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def restore(self) -> None:
        self.cut_after = None
        if self._server is None:
            await self.start()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        await self.cut()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_w))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if count:
                        if (
                            self.cut_after is not None
                            and self.forwarded + len(data) > self.cut_after
                        ):
                            # Pass on what fits, then go dark mid-stream, like a dying link.
                            dst.write(data[: max(0, self.cut_after - self.forwarded)])
                            await dst.drain()
                            await self.cut()
                            return
                        self.forwarded += len(data)
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_w, True), pump(up_r, writer, False))
        self._writers.discard(writer)
        self._writers.discard(up_w)


def pdf_with_text(lines: list[str], content: bytes | None = None, filters: bytes = b"") -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (Helvetica), built by hand; ``content``
    replaces the page's content stream (encoded with ``filters``, e.g. ``/FlateDecode``)."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({esc}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode() if content is None else content
    filter_entry = b" /Filter " + filters if filters else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(stream), filter_entry) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def pdf_without_text() -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(width=612, height=792)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def pdf_bomb(expanded_bytes: int = 200 * 1024 * 1024) -> bytes:
    """A PDF of about 200 KB whose page content inflates (FlateDecode) to ``expanded_bytes``."""
    import zlib

    packer = zlib.compressobj(9)
    block = b" " * (1024 * 1024)
    parts = [packer.compress(block) for _ in range(expanded_bytes // len(block))]
    return pdf_with_text([], content=b"".join(parts) + packer.flush(), filters=b"/FlateDecode")


def pdf_with_broken_trailer() -> bytes:
    """A PDF whose trailer is a number instead of a dictionary: pypdf raises AttributeError,
    outside its own error classes."""
    return pdf_with_text(["The pool opens at 6 am."]).replace(b"trailer\n<<", b"trailer\n6<", 1)
