"""The grounding guard: an answer is spoken only if the knowledge retrieved for the turn
supports it.

A small model (and sometimes a large one) states facts its context does not contain. The guard
checks each sentence of an answer as it completes: its key content — numbers and times, names,
content words — must appear in the retrieved passages. The first unsupported sentence ends the
answer and is replaced by the passage sentence that best matches the caller's question
(``quote``) or by an honest refusal (``refuse``). Sentences already spoken stay spoken, so the
guard costs one sentence of buffering, not the whole answer.

Pure text in, text out: no model, no I/O, nothing on the critical path beyond a set lookup per
word.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

_WORD = re.compile(r"[a-z0-9]+(?:[.:'][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# Words that carry no fact: function words, politeness, and the words of an honest
# "I don't know" (which never needs support).
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "without",
        "about",
        "as",
        "into",
        "over",
        "under",
        "up",
        "down",
        "out",
        "off",
        "again",
        "further",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "than",
        "too",
        "very",
        "can",
        "will",
        "just",
        "should",
        "now",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "would",
        "could",
        "may",
        "might",
        "must",
        "shall",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "yes",
        "yeah",
        "sure",
        "ok",
        "okay",
        "please",
        "thank",
        "thanks",
        "hello",
        "hi",
        "welcome",
        "glad",
        "happy",
        "help",
        "assist",
        "let",
        "know",
        "sorry",
        "afraid",
        "unfortunately",
        "however",
        "also",
        "well",
        "today",
        "information",
        "details",
        "anything",
        "something",
        "get",
        "got",
        "tell",
        "say",
        "said",
        "like",
        "one",
        "ve",
        "ll",
        "re",
        "s",
        "t",
        "d",
        "m",
        "don",
        "doesn",
        "didn",
        "isn",
        "aren",
        "wasn",
        "weren",
        "won",
        "can't",
        "cannot",
        "dont",
        "doesnt",
    ]
)

_REFUSALS = re.compile(
    r"\b(i (do not|don't|dont) (know|have)|i'm not sure|i am not sure|i (can't|cannot) "
    r"(find|say|answer)|no information|not (in|part of) (my|the) (information|knowledge))\b"
)


def _normalise(word: str) -> str:
    # Plural and possessive forms count as the same word ("Saturdays" is "saturday").
    word = word.removesuffix("'s")
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


def key_terms(text: str) -> set[str]:
    """The words of ``text`` that carry its facts."""
    words = (_normalise(w) for w in _WORD.findall(text.lower()))
    return {w for w in words if w not in _STOPWORDS and (len(w) > 2 or w.isdigit())}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


@dataclass(frozen=True)
class Verdict:
    supported: bool
    support: float
    """Share of the sentence's key terms found in the passages."""
    missing: frozenset[str]
    """Key terms the passages do not contain."""


@dataclass(frozen=True)
class GroundingGuard:
    """Checks answers against the passages retrieved for a turn."""

    min_support: float = 0.75
    fallback: Literal["quote", "refuse"] = "quote"
    refusal: str = "I'm sorry, I don't have that information."

    def check(self, sentence: str, passage_terms: set[str]) -> Verdict:
        terms = key_terms(sentence)
        honest = _REFUSALS.search(sentence.lower()) and not any(c.isdigit() for c in sentence)
        if not terms or honest:
            return Verdict(True, 1.0, frozenset())
        missing = frozenset(terms - passage_terms)
        support = 1 - len(missing) / len(terms)
        # Numbers are facts on their own: one invented time or price fails the sentence.
        invented_number = any(t[0].isdigit() for t in missing)
        return Verdict(support >= self.min_support and not invented_number, support, missing)

    def replacement(self, question: str, passages: Sequence[str]) -> str:
        """What the agent says instead of an unsupported sentence."""
        if self.fallback == "quote":
            best = best_sentence(question, passages)
            if best:
                return best
        return self.refusal

    async def guard(
        self, answer: AsyncIterable[str], question: str, passages: Sequence[str]
    ) -> AsyncIterator[str]:
        """Stream ``answer`` sentence by sentence, stopping at the first unsupported one."""
        passage_terms = set().union(*(key_terms(p) for p in passages)) if passages else set()
        pending = ""
        spoke = False
        async for delta in answer:
            pending += delta
            *complete, pending = _split_keep_tail(pending)
            for sentence in complete:
                if not self.check(sentence, passage_terms).supported:
                    yield ("" if not spoke else " ") + self.replacement(question, passages)
                    return
                yield ("" if not spoke else " ") + sentence
                spoke = True
        if pending.strip():
            if self.check(pending, passage_terms).supported:
                yield ("" if not spoke else " ") + pending.strip()
            else:
                yield ("" if not spoke else " ") + self.replacement(question, passages)

    def review(self, answer: str, question: str, passages: Sequence[str]) -> str:
        """The whole answer at once (text turns, evaluation): what the agent would say."""
        passage_terms = set().union(*(key_terms(p) for p in passages)) if passages else set()
        kept: list[str] = []
        for sentence in sentences(answer):
            if not self.check(sentence, passage_terms).supported:
                kept.append(self.replacement(question, passages))
                break
            kept.append(sentence)
        return " ".join(kept) if kept else self.replacement(question, passages)


def _split_keep_tail(text: str) -> list[str]:
    """Complete sentences of ``text`` followed by the unfinished tail (possibly empty)."""
    parts = _SENTENCE_END.split(text)
    return [p.strip() for p in parts[:-1]] + [parts[-1]]


def best_sentence(question: str, passages: Sequence[str]) -> str | None:
    """The passage sentence sharing the most key terms with the question, if any shares one."""
    wanted = key_terms(question)
    best, best_score = None, 0
    for passage in passages:
        for line in passage.splitlines():
            if line.lstrip().startswith("#"):
                continue  # headings are not answers
            for sentence in sentences(line):
                score = len(wanted & key_terms(sentence))
                if score > best_score:
                    best, best_score = sentence, score
    return best
