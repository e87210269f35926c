"""Cutting documents into token-sized passages that overlap and carry their heading context.

Tokens are counted with the local model's WordPiece tokenizer, so a passage of ``size`` tokens
fits the local model's window; for OpenAI models the count is close enough (and far under their
limit). A passage ends at a sentence end when one is near the size limit, so answers are not
cut mid-sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import ChunkRecord, Document
from .tokenizer import wordpiece

_SENTENCE_END = {".", "?", "!", ";", ":"}


@dataclass(frozen=True)
class ChunkingOptions:
    size_tokens: int = 256
    overlap_tokens: int = 32


def heading_context(doc: Document, headings: tuple[str, ...]) -> str:
    parts = list(headings)
    if not parts or parts[0].strip().lower() != doc.title.strip().lower():
        parts.insert(0, doc.title)
    return " > ".join(p for p in parts if p)


def chunk_document(
    doc: Document, opts: ChunkingOptions, limit: int | None = None
) -> list[ChunkRecord]:
    """The document's passages; stops once there are ``limit`` of them (the caller reports a
    document that reaches it, rather than holding millions of passages in memory)."""
    tok = wordpiece()
    out: list[ChunkRecord] = []
    for section in doc.sections:
        if limit is not None and len(out) >= limit:
            break
        context = heading_context(doc, section.headings)
        ctx_tokens = len(tok.encode(context, add_special_tokens=False).ids)
        # The context is repeated in every passage; never let it eat more than half the budget.
        budget = max(opts.size_tokens - ctx_tokens - 1, opts.size_tokens // 2)
        overlap = min(opts.overlap_tokens, budget // 2)
        for body in _windows(section.text, budget, overlap):
            out.append(
                ChunkRecord(
                    text=f"{context}\n{body}" if context else body,
                    source=doc.source,
                    document=doc.name,
                    title=doc.title,
                    position=len(out),
                    headings=section.headings,
                    language=doc.language,
                )
            )
    return out


def _windows(text: str, budget: int, overlap: int) -> list[str]:
    enc = wordpiece().encode(text, add_special_tokens=False)
    tokens, offsets = enc.tokens, enc.offsets
    n = len(tokens)
    if n <= budget:
        return [text.strip()] if text.strip() else []
    out: list[str] = []
    start = 0
    while start < n:
        end = min(start + budget, n)
        if end < n:
            end = _sentence_end(tokens, text, offsets, start, end, budget)
            while end < n and tokens[end].startswith("##") and end > start + 1:
                end -= 1  # never split a word
        out.append(text[offsets[start][0] : offsets[end - 1][1]].strip())
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        while nxt > start + 1 and tokens[nxt].startswith("##"):
            nxt -= 1
        start = nxt
    return [c for c in out if c]


def _sentence_end(
    tokens: list[str], text: str, offsets: list[tuple[int, int]], start: int, end: int, budget: int
) -> int:
    """The best cut at or before ``end``: after a sentence or paragraph end in the last third."""
    floor = start + (budget * 2) // 3
    for i in range(end - 1, floor - 1, -1):
        if i + 1 < len(offsets) and "\n\n" in text[offsets[i][1] : offsets[i + 1][0]]:
            return i + 1
    for i in range(end - 1, floor - 1, -1):
        if tokens[i] in _SENTENCE_END:
            return i + 1
    return end
