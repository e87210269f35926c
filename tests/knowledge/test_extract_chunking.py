"""Format extraction and chunking, on real parsers (no Redis)."""

from __future__ import annotations

import itertools

import pytest

from agent_runtime.knowledge.chunking import ChunkingOptions, chunk_document
from agent_runtime.knowledge.errors import SourceError
from agent_runtime.knowledge.extract import detect_format, extract
from agent_runtime.knowledge.models import RawDocument
from agent_runtime.knowledge.tokenizer import wordpiece

from .conftest import PAGE
from .helpers import pdf_with_text, pdf_without_text

MD = """# Guest handbook

Welcome to the hotel.

## Breakfast

Breakfast is served from **7 to 10 am** in the [garden room](http://x/y).

### Vegan options

Ask for the vegan menu.

Check-out
---------

Check-out is at noon.
"""


def raw(data: bytes | str, name: str = "doc", fmt: str = "auto") -> RawDocument:
    body = data.encode() if isinstance(data, str) else data
    return RawDocument("src", name, body, fmt)


def test_markdown_sections_keep_heading_path_and_drop_markup() -> None:
    doc = extract(raw(MD, "handbook.md"))
    assert doc.title == "Guest handbook"
    by_heading = {s.headings: s.text for s in doc.sections}
    assert by_heading[("Guest handbook", "Breakfast")] == (
        "Breakfast is served from 7 to 10 am in the garden room."
    )
    assert by_heading[("Guest handbook", "Breakfast", "Vegan options")] == "Ask for the vegan menu."
    assert by_heading[("Guest handbook", "Check-out")] == "Check-out is at noon."


def test_html_main_text_without_navigation_or_footer() -> None:
    doc = extract(raw(PAGE, "https://hotel.example/page.html"))
    text = " ".join(s.text for s in doc.sections)
    assert doc.title == "Shuttle service"
    assert "every 40 minutes" in text
    assert "navigation" not in text
    assert "footer" not in text
    assert doc.sections[-1].headings == ("Shuttle service", "Airport shuttle")


def test_pdf_text_layer_is_extracted() -> None:
    doc = extract(raw(pdf_with_text(["Pool hours", "The pool opens at 6 am."]), "pool.pdf"))
    assert "The pool opens at 6 am." in doc.sections[0].text


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.txt", "is empty"),
        (b"   \n\n ", "blank.md", "is empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50, "tool.bin", "looks binary"),
        (pdf_without_text(), "scan.pdf", "PDF has no text layer"),
        (b"%PDF-1.4 garbage that is no pdf", "broken.pdf", "not a readable PDF"),
    ],
)
def test_bad_documents_name_the_source(data: bytes, name: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as err:
        extract(raw(data, name))
    assert err.value.source == f"src/{name}"


def test_format_detection() -> None:
    assert detect_format(raw("%PDF-1.7 ...", "x")) == "pdf"
    assert detect_format(raw("<!DOCTYPE html><p>x", "x")) == "html"
    assert detect_format(raw("# Title\n\ntext", "notes")) == "markdown"
    assert detect_format(raw("plain words", "notes")) == "text"
    assert detect_format(raw("# not a heading", "x.txt", fmt="text")) == "text"


def test_chunks_respect_size_overlap_and_carry_context() -> None:
    sentences = " ".join(f"Rule number {i} says guests must keep room {i} tidy." for i in range(80))
    doc = extract(raw(f"# House rules\n\n## Rooms\n\n{sentences}", "rules.md"))
    chunks = chunk_document(doc, ChunkingOptions(size_tokens=64, overlap_tokens=16))
    tok = wordpiece()
    assert len(chunks) > 5
    for c in chunks:
        assert c.text.startswith("House rules > Rooms\n")
        assert len(tok.encode(c.text, add_special_tokens=False).ids) <= 64
        assert c.source == "src"
        assert c.title == "House rules"
    assert [c.position for c in chunks] == list(range(len(chunks)))
    # Consecutive chunks overlap, and most end on a sentence boundary.
    for a, b in itertools.pairwise(chunks):
        tail = a.text.split("\n", 1)[1][-20:]
        assert tail in b.text
    assert sum(c.text.endswith(".") for c in chunks[:-1]) >= len(chunks) // 2
    # Nothing of the original text is lost.
    joined = " ".join(c.text for c in chunks)
    assert all(f"room {i} tidy" in joined for i in range(80))
