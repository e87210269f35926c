"""Turning source bytes into text sections with their heading path.

Formats: plain text, Markdown, HTML (main content only: navigation, headers, footers and
scripts dropped) and PDF (its text layer; scanned PDFs have none and are rejected).
"""

from __future__ import annotations

import io
import logging
import re
from urllib.parse import urlsplit

from .errors import SourceError
from .models import Document, RawDocument, Section

_EXT = {
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf", ".txt": "text", ".text": "text", ".rst": "text",
}  # fmt: skip
_CTYPE = {
    "text/html": "html", "application/xhtml+xml": "html", "application/pdf": "pdf",
    "text/markdown": "markdown", "text/x-markdown": "markdown", "text/plain": "text",
}  # fmt: skip
# No backtracking: the closing ``#``s are stripped in code (a lazy ``.+?`` followed by
# ``\s*#*\s*$`` took 14 s on one crafted line).
_MD_HEADING = re.compile(r"(#{1,6})\s+(.*)")
MAX_HEADING_CHARS = 200
"""Longer headings are cut: each is repeated in every passage under it."""


def _md_heading(line: str) -> tuple[int, str] | None:
    m = _MD_HEADING.match(line)
    if m is None:
        return None
    text = m.group(2).rstrip().rstrip("#").rstrip()
    return (len(m.group(1)), text) if text else None


def _short_heading(text: str) -> str:
    return text if len(text) <= MAX_HEADING_CHARS else text[: MAX_HEADING_CHARS - 1] + "…"


def detect_format(doc: RawDocument) -> str:
    if doc.format != "auto":
        return doc.format
    head = doc.data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    if doc.content_type:
        ctype = doc.content_type.split(";")[0].strip().lower()
        if ctype in _CTYPE and _CTYPE[ctype] != "text":
            return _CTYPE[ctype]
    path = urlsplit(doc.name).path if "://" in doc.name else doc.name
    for ext, fmt in _EXT.items():
        if path.lower().endswith(ext):
            return fmt
    lowered = head[:256].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "html"
    if any(_md_heading(line) for line in _decode_text(doc).splitlines()[:200]):
        return "markdown"
    return "text"


def extract(doc: RawDocument) -> Document:
    """The document's sections; raises :class:`SourceError` for binary, empty or textless input."""
    fmt = detect_format(doc)
    where = doc.source if doc.name == doc.source else f"{doc.source}/{doc.name}"
    if not doc.data.strip():
        raise SourceError(where, "is empty")
    if fmt == "pdf":
        title, sections = _pdf(doc, where)
    else:
        text = _decode_text(doc, where)
        if fmt == "html":
            title, sections = _html(text, where)
        elif fmt == "markdown":
            title, sections = _markdown(text)
        else:
            title, sections = None, [Section((), _normalise(text))]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        kind = {"pdf": "PDF", "html": "HTML page"}.get(fmt, "document")
        raise SourceError(where, f"{kind} has no text to index")
    title = doc.title or title or doc.name
    return Document(doc.source, doc.name, title, sections)


def _decode_text(doc: RawDocument, where: str | None = None) -> str:
    data = doc.data
    if b"\x00" in data[:8192]:
        if where is None:
            return ""
        raise SourceError(where, "looks binary: not text, Markdown, HTML or PDF")
    text = data.decode("utf-8", errors="replace")
    if where is not None and text.count("\ufffd") > max(8, len(text) // 100):
        raise SourceError(where, "is not UTF-8 text (binary content?)")
    return text.lstrip("\ufeff")


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


# --- Markdown -------------------------------------------------------------------------------

# Every repeat is bounded: on a long line without the closing mark, an unbounded one scans to the
# end of the line from every opening mark (quadratic time on a crafted document).
_MD_INLINE = [
    (re.compile(r"!\[([^\]]{0,500})\]\([^)]{0,2048}\)"), r"\1"),  # images: keep alt text
    (re.compile(r"\[([^\]]{1,500})\]\([^)]{0,2048}\)"), r"\1"),  # links: keep label
    (re.compile(r"<[^>\n]{1,500}>"), ""),  # inline HTML tags
    (re.compile(r"(\*\*|__)(.{1,500}?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])[*_](\S.{0,500}?)[*_](?![\w*])"), r"\1"),
    (re.compile(r"`([^`]{1,500})`"), r"\1"),
]


def _md_inline(line: str) -> str:
    for pattern, repl in _MD_INLINE:
        line = pattern.sub(repl, line)
    return line


def _markdown(text: str) -> tuple[str | None, list[Section]]:
    lines = text.replace("\r\n", "\n").split("\n")
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    buf: list[str] = []
    title: str | None = None
    in_fence = False

    def flush() -> None:
        body = _normalise("\n".join(buf))
        if body:
            sections.append(Section(tuple(h for _, h in stack), body))
        buf.clear()

    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        level, heading = 0, ""
        if not in_fence:
            found = _md_heading(line)
            if found:
                level, heading = found
            elif (
                i + 1 < len(lines) and line.strip() and re.fullmatch(r"=+|-+", lines[i + 1].strip())
            ):
                # Setext heading: the underline line is dropped below.
                level, heading = (1 if lines[i + 1].strip()[0] == "=" else 2), line.strip()
            elif re.fullmatch(r"\s*(=+|-+|\*\*\*+)\s*", line) and (not buf or not buf[-1].strip()):
                continue
        if level:
            flush()
            heading = _short_heading(_md_inline(heading).strip())
            stack = [(lv, h) for lv, h in stack if lv < level] + [(level, heading)]
            if level == 1 and title is None:
                title = heading
            continue
        if re.fullmatch(r"=+|-+", line.strip()) and sections and not buf:
            continue
        buf.append(line if in_fence else _md_inline(re.sub(r"^\s{0,3}([>*+-]|\d+\.)\s+", "", line)))
    flush()
    return title, sections


# --- HTML -----------------------------------------------------------------------------------

_DROP = "script, style, noscript, nav, header, footer, aside, form, svg, iframe, template, button"
_DROP_ROLES = '[role="navigation"], [role="banner"], [role="contentinfo"], [aria-hidden="true"]'
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {"p", "li", "pre", "td", "th", "dt", "dd", "blockquote", "figcaption", "caption"}


MAX_HTML_DEPTH = 5000
"""Lexbor's parse time grows faster than quadratically with nesting (30,000 nested elements:
1.5 s, 100,000: half a minute); a real page is a few dozen deep."""
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)|<!--")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr", "param", "keygen", "frame"}  # fmt: skip
# End tags the parser supplies itself: siblings, not nesting, when they are left out.
_OPTIONAL_END = {"p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt",
                 "rp", "rtc", "thead", "tbody", "tfoot", "colgroup", "caption", "html", "head",
                 "body"}  # fmt: skip
_RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "noembed", "noframes", "plaintext"}


def html_depth_over(text: str, limit: int = MAX_HTML_DEPTH) -> bool:
    """Whether open tags nest deeper than ``limit``: one linear pass before parsing, skipping
    comments and script or style content (where ``<`` is not a tag)."""
    lower = text.lower()
    depth, pos = 0, 0
    while m := _TAG.search(text, pos):
        if m.group(0) == "<!--":
            end = text.find("-->", m.end())
            if end < 0:
                return False
            pos = end + 3
            continue
        pos = m.end()
        name = m.group(2).lower()
        if m.group(1):
            depth = max(0, depth - 1)
        elif name in _RAW_TEXT:
            end = lower.find(f"</{name}", pos)
            if end < 0:
                return False
            pos = end + 2 + len(name)
        elif name not in _VOID and name not in _OPTIONAL_END:
            depth += 1
            if depth > limit:
                return True
    return False


def _html(text: str, where: str = "") -> tuple[str | None, list[Section]]:
    from selectolax.lexbor import LexborHTMLParser, LexborNode

    if html_depth_over(text):
        raise SourceError(where, f"HTML nests elements more than {MAX_HTML_DEPTH} deep")
    tree = LexborHTMLParser(text)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else None
    for sel in (_DROP, _DROP_ROLES):
        for node in tree.css(sel):
            node.decompose()
    root = tree.css_first("main") or tree.css_first('[role="main"]') or tree.css_first("article")
    root = root or tree.body or tree.root
    if root is None:
        return title, []
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    buf: list[str] = []

    def flush() -> None:
        body = _normalise("\n\n".join(buf))
        if body:
            sections.append(Section(tuple(h for _, h in stack), body))
        buf.clear()

    def walk(top: LexborNode) -> None:
        # An explicit stack, not recursion: 3,000 nested <div>s raised RecursionError.
        nonlocal stack
        pending = [top.iter(include_text=True)]
        while pending:
            child = next(pending[-1], None)
            if child is None:
                pending.pop()
                continue
            tag = child.tag
            if tag == "-text":
                piece = (child.text_content or "").strip()
                if piece:
                    buf.append(piece)
            elif tag in _HEADINGS:
                flush()
                level = _HEADINGS[tag]
                heading = _short_heading(child.text(separator=" ", strip=True))
                stack = [(lv, h) for lv, h in stack if lv < level] + [(level, heading)]
            elif tag in _BLOCKS:
                piece = child.text(separator=" ", strip=True)
                if piece:
                    buf.append(piece)
            elif tag not in ("-comment", "br", "hr", "img"):
                pending.append(child.iter(include_text=True))

    walk(root)
    flush()
    if not title:
        title = next((s.headings[0] for s in sections if s.headings), None)
    return title, sections


# --- PDF ------------------------------------------------------------------------------------


def _pdf(doc: RawDocument, where: str) -> tuple[str | None, list[Section]]:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns on every odd xref
    try:
        reader = PdfReader(io.BytesIO(doc.data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError(where, "PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except SourceError:
        raise
    except LimitReachedError as exc:
        raise SourceError(where, f"PDF refused: it exceeds a safety limit ({exc})") from None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SourceError(where, f"is not a readable PDF: {exc}") from None
    except Exception as exc:  # pypdf raises many kinds on malformed files; none may escape
        raise SourceError(where, f"is not a readable PDF: {type(exc).__name__}: {exc}") from None
    sections = [Section((), _normalise(p)) for p in pages if p.strip()]
    if not sections:
        raise SourceError(where, "PDF has no text layer (scanned images?); nothing to index")
    return (str(meta_title) if meta_title else None), sections
