"""Query terms for the full-text half of retrieval, and which of them are too common to match on.

RediSearch has no dynamic pruning: an OR-query walks every posting of every term, so a question
with a word found in a third of 100k chunks costs ~20 ms. As in Lucene's CommonTermsQuery, a
term whose posting is long (its document frequency, counted per stem at ingestion) stops
selecting documents and only scores them: ``(rare1|rare2) ~common1 ~common2``; the optional
terms are only looked up for the selected documents. BM25 weighs such terms little anyway, and a
chunk matching only common words is still found by the vector half. A question of common words
only requires its two rarest (Lucene requires all of them, which leaves a long question with no
match). Knowledge bases smaller than the cut-off have no common term, so nothing changes there.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping

from ..text import stem, tokenise

# A term in more chunks than this is matched optionally (its posting walk costs ~1 ms per
# 5k documents on these cores; see docs/benchmarks.md).
COMMON_TERM_DOCS = 1000
# Question words and fillers that match everything in a BM25 OR-query.
_STOP_WORDS = """
a an and are as at be but by can could do does did for from had has have how i
if in into is it its me my no not of on or our please should so such tell than
that the their them then there these they this to up us was we were what when
where which who whom why will with would you your yours about any some
"""
STOP = frozenset(_STOP_WORDS.split())


def content_words(text: str) -> list[str]:
    """The distinct lower-cased words of ``text`` that are not stop words, in order."""
    words = dict.fromkeys(tokenise(text, index=True))
    return [w for w in words if w not in STOP and len(w) > 1]


def common_terms(texts: Iterable[str], cutoff: int = COMMON_TERM_DOCS) -> dict[str, int]:
    """Stems found in more than ``cutoff`` of ``texts``, with their document frequency.

    Every word counts, stop words too: a query word matches every form of its stem
    ("having" matches "have"), so its posting is that of the stem.
    """
    df: Counter[str] = Counter()
    for text in texts:
        df.update({stem(w) for w in set(tokenise(text, index=True))})
    return {s: n for s, n in df.items() if n > cutoff}


def encode_common(terms: Mapping[str, int]) -> str:
    return json.dumps(dict(sorted(terms.items())), separators=(",", ":"))


def decode_common(raw: str | bytes | None) -> dict[str, int]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}


def text_query(question: str, common: Mapping[str, int] | None = None) -> str | None:
    """A RediSearch query over the question's content words, or None if it has none.

    Without common terms: an OR of all words. With them: the rare words select, the common
    ones are optional; if every word is common, the two rarest are required together.
    """
    words = content_words(question)
    if not words:
        return None
    if not common:
        return "|".join(words)
    df = {w: common.get(stem(w), 0) for w in words}
    rare = [w for w in words if not df[w]]
    if rare:
        selecting = "|".join(rare)
    else:
        rare = sorted(words, key=df.__getitem__)[:2]
        selecting = " ".join(rare)
    optional = " ".join(f"~{w}" for w in words if w not in rare)
    return f"({selecting}) {optional}".strip()
