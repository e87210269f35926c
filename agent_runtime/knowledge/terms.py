"""Query terms for the full-text half of retrieval, and which of them are too common to match on.

RediSearch has no dynamic pruning: an OR-query walks every posting of every term, so a question
with a word found in a third of 100k chunks costs ~20 ms. As in Lucene's CommonTermsQuery, a
term whose posting is long (its document frequency, counted per stem at ingestion) stops
selecting documents and only scores them: ``(rare1|rare2) ~common1 ~common2``; the optional
terms are only looked up for the selected documents. BM25 weighs such terms little anyway, and a
chunk matching only common words is still found by the vector half. A question of common words
only requires its two rarest (Lucene requires all of them, which leaves a long question with no
match). Knowledge bases smaller than the cut-off have no common term, so nothing changes there.

Words are those of the question's language (:func:`query_languages`): its stop words are left
out, and each word's document frequency is that of its stem in that language. Document
frequencies are counted per stem, each passage's words stemmed in the passage's language: that
is how RediSearch keeps them (one posting per stem, whatever language stemmed it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from kubevox_api.languages import DEFAULT_TEXT_LANGUAGE, TEXT_LANGUAGES, TextLanguage

from ..text import detect_language, query_words, stem, tokenise

# A term in more chunks than this is matched optionally (its posting walk costs ~1 ms per
# 5k documents on these cores; see docs/benchmarks.md).
COMMON_TERM_DOCS = 1000


def common_terms(
    texts: Iterable[tuple[str, TextLanguage]], cutoff: int = COMMON_TERM_DOCS
) -> dict[str, int]:
    """Stems found in more than ``cutoff`` of ``texts`` (each with its language), with their
    document frequency.

    Every word counts, stop words too: a query word matches every form of its stem
    ("having" matches "have"), so its posting is that of the stem.
    """
    df: Counter[str] = Counter()
    for text, language in texts:
        df.update({stem(w, language) for w in set(tokenise(text, index=True))})
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


def text_query(
    question: str,
    common: Mapping[str, int] | None = None,
    language: TextLanguage = DEFAULT_TEXT_LANGUAGE,
) -> str | None:
    """A RediSearch query over the question's content words in ``language``, or None if it has
    none (searched with that language's stemmer: ``FT.SEARCH ... LANGUAGE``).

    Without common terms: an OR of all words. With them: the rare words select, the common
    ones are optional; if every word is common, the two rarest are required together.
    """
    words = query_words(question, language)
    if not words:
        return None
    if not common:
        return "|".join(words)
    df = {w: common.get(stem(w, language), 0) for w in words}
    rare = [w for w in words if not df[w]]
    if rare:
        selecting = "|".join(rare)
    else:
        rare = sorted(words, key=df.__getitem__)[:2]
        selecting = " ".join(rare)
    optional = " ".join(f"~{w}" for w in words if w not in rare)
    return f"({selecting}) {optional}".strip()


def query_languages(
    question: str, present: Sequence[TextLanguage], hint: TextLanguage | None = None
) -> list[TextLanguage]:
    """The languages to search ``question`` in, among ``present`` (the knowledge base's, most
    passages first): the only one; else the one the question is written in
    (:func:`~agent_runtime.text.detect_language`); else ``hint`` (the language the agent's
    callers speak) if present; else all of them, each searched and the best score kept."""
    if len(present) <= 1:
        return list(present) or [DEFAULT_TEXT_LANGUAGE]
    detected = detect_language(question, present)
    if detected is not None:
        return [detected]
    if hint is not None and hint in present:
        return [hint]
    return list(present)


def encode_languages(documents: Mapping[TextLanguage, int]) -> str:
    """A version's documents per language, most first (``{"fr":4,"en":2}``)."""
    ordered = sorted(documents.items(), key=lambda kv: (-kv[1], kv[0]))
    return json.dumps(dict(ordered), separators=(",", ":"))


def decode_languages(raw: str | bytes | None) -> dict[TextLanguage, int]:
    """What :func:`encode_languages` wrote, most documents first; a version written before
    languages were recorded has none (all of its documents were English)."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        value = {}
    known = {lang: lang for lang in TEXT_LANGUAGES}
    if not isinstance(value, dict):
        return {}
    found = {known[k]: int(v) for k, v in value.items() if k in known}
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))


def present_languages(documents: Mapping[TextLanguage, int]) -> list[TextLanguage]:
    """The languages a version's questions may be searched in, most documents first."""
    return list(documents) or [DEFAULT_TEXT_LANGUAGE]
