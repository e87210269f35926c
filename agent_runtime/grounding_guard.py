"""The grounding guard: an answer is spoken only if the knowledge retrieved for the turn
supports it.

A small model (and sometimes a large one) states facts its context does not contain, or splices
two facts into a false one. The guard checks each sentence of an answer as it completes: its key
content (numbers and times, names, content words) must appear together in one sentence of the
retrieved passages, which must be negative if it is ("there is no parking" is not supported by
"free parking is available"); words scattered over the context make no fact.
The first unsupported sentence ends the answer and is replaced by the passage sentence that best
matches the caller's question (``quote``) or by an honest refusal (``refuse``: the agent's
``phrases.guardRefusal``, in its language). Sentences already spoken stay spoken, so the guard
costs one sentence of buffering, not the whole answer.

Pure text in, text out: no model, no I/O, a few set operations per sentence.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from kubevox_api import phrases_for
from kubevox_api.languages import DEFAULT_TEXT_LANGUAGE, TextLanguage

from .text import (
    is_heading,
    key_terms,
    negated,
    numbers,
    paragraphs,
    split_keep_tail,
    split_sentences,
)

_NOT_A_SENTENCE = re.compile(r"^.*[^.!?\"')\s]\s*$")
"""A line that does not end like a sentence (a title, a list item): evidence, but never quoted
on its own."""

_REFUSALS = re.compile(
    r"\b(i (do not|don't|dont) (know|have)|i'm not sure|i am not sure|i (can't|cannot) "
    r"(find|say|answer)|no information|not (in|part of) (my|the) (information|knowledge))\b"
)


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

    min_support: float = 0.85
    fallback: Literal["quote", "refuse"] = "quote"
    refusal: str = phrases_for("en").guard_refusal
    """Said when nothing answers the question; an agent's comes from its phrases (its
    language's built-in one by default), the English one here is for tools and tests."""
    language: TextLanguage = DEFAULT_TEXT_LANGUAGE
    """The language answers and passages are compared in (the agent's): its stop words and
    stems (:func:`~agent_runtime.text.key_terms`)."""

    def check(self, sentence: str, evidence: Sequence[Evidence]) -> Verdict:
        """``evidence``: what each passage sentence states (see :func:`evidence_of`)."""
        terms = key_terms(sentence, self.language)
        honest = _REFUSALS.search(sentence.lower()) and not any(c.isdigit() for c in sentence)
        if not terms or honest:
            return Verdict(True, 1.0, frozenset())
        said_numbers = numbers(sentence, self.language)
        said_no = negated(sentence, self.language)
        best = Verdict(False, 0.0, frozenset(terms))
        for source in evidence:
            missing = frozenset(terms - source.terms)
            support = 1 - len(missing) / len(terms)
            # Numbers are facts on their own, and so is their order: "8 am to 1 pm" is not
            # supported by "8 am to 6 pm, and 9 am to 1 pm". And "there is no parking" says the
            # opposite of "free parking is available", with the same words.
            ok = (
                support >= self.min_support
                and _in_order(said_numbers, source.numbers)
                and said_no == source.negated
            )
            if ok or support > best.support:
                best = Verdict(ok, support, missing)
            if ok:
                break
        return best

    def replacement(self, question: str, passages: Sequence[str]) -> str:
        """What the agent says instead of an unsupported sentence."""
        if self.fallback == "quote":
            best = best_sentence(question, passages, self.language)
            if best:
                return best
        return self.refusal

    def _next(
        self,
        sentence: str,
        evidence: Sequence[Evidence],
        spoken: list[str],
        question: str,
        passages: Sequence[str],
    ) -> tuple[str | None, bool]:
        """What to say for the model's next ``sentence`` (None: nothing), and whether to stop."""
        if sentence in spoken:
            return None, False  # small models repeat themselves; the caller heard it once
        if self.check(sentence, evidence).supported:
            return sentence, False
        replacement = self.replacement(question, passages)
        return (None if replacement in spoken else replacement), True

    async def guard(
        self, answer: AsyncIterable[str], question: str, passages: Sequence[str]
    ) -> AsyncIterator[str]:
        """Stream ``answer`` sentence by sentence, stopping at the first unsupported one."""
        evidence = evidence_of(passages, self.language)
        spoken: list[str] = []
        pending = ""
        async for delta in answer:
            pending += delta
            *complete, pending = split_keep_tail(pending)
            for sentence in complete:
                text, stop = self._next(sentence, evidence, spoken, question, passages)
                if text:
                    yield (" " if spoken else "") + text
                    spoken.append(text)
                if stop:
                    return
        if pending.strip():
            text, _ = self._next(pending.strip(), evidence, spoken, question, passages)
            if text:
                yield (" " if spoken else "") + text

    def review(self, answer: str, question: str, passages: Sequence[str]) -> str:
        """The whole answer at once (text turns, evaluation): what the agent would say."""
        evidence = evidence_of(passages, self.language)
        spoken: list[str] = []
        for sentence in split_sentences(answer):
            text, stop = self._next(sentence, evidence, spoken, question, passages)
            if text:
                spoken.append(text)
            if stop:
                break
        return " ".join(spoken) if spoken else self.replacement(question, passages)


def _passage_sentences(passages: Sequence[str], quotable: bool = False) -> list[str]:
    out = []
    for passage in passages:
        for block in paragraphs(passage):
            if is_heading(block):
                continue
            sentences = split_sentences(block)
            out += [s for s in sentences if not (quotable and _NOT_A_SENTENCE.match(s))]
    return out


@dataclass(frozen=True)
class Evidence:
    """What one passage sentence states: its key terms, its numbers in order, whether it is
    negative."""

    terms: frozenset[str]
    numbers: tuple[str, ...]
    negated: bool = False


def _in_order(said: tuple[str, ...], source: tuple[str, ...]) -> bool:
    """``said`` is a subsequence of ``source``."""
    remaining = iter(source)
    return all(n in remaining for n in said)


def evidence_of(
    passages: Sequence[str], language: TextLanguage = DEFAULT_TEXT_LANGUAGE
) -> list[Evidence]:
    """One :class:`Evidence` per passage sentence. Sentences are not pooled: two true sentences
    ("the clinic opens at 8", "the pharmacy closes at noon") pooled would support a false one."""
    return [
        Evidence(frozenset(key_terms(s, language)), numbers(s, language), negated(s, language))
        for s in _passage_sentences(passages)
    ]


def best_sentence(
    question: str, passages: Sequence[str], language: TextLanguage = DEFAULT_TEXT_LANGUAGE
) -> str | None:
    """The passage sentence sharing the most key terms with the question, if it shares at least
    half of them: a sentence that merely shares "offer" with "do you offer implants?" answers
    nothing, and declining is then the honest reply."""
    wanted = key_terms(question, language)
    best, best_score = None, 0
    for sentence in _passage_sentences(passages, quotable=True):
        score = len(wanted & key_terms(sentence, language))
        if score > best_score:
            best, best_score = sentence, score
    return best if wanted and best_score * 2 >= len(wanted) else None
