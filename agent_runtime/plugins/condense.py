"""Condensing retrieved passages for the local model: the sentences that answer, in few tokens.

The local provider (:mod:`.local_llm`) is its only user: the agent's retrieval, the guard's
evidence (whole passages) and the other providers' prompts are not condensed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kubevox_api.languages import DEFAULT_TEXT_LANGUAGE, TextLanguage

from ..text import estimate_tokens, is_heading, key_terms, paragraphs, prefix, split_sentences


@dataclass(frozen=True)
class _Sentence:
    passage: int  # retrieval rank of its passage
    position: int  # order inside the passage
    text: str
    terms: frozenset[str]  # its stems
    heading: frozenset[str]  # the stems of the heading it sits under


def _stems(text: str, language: TextLanguage) -> frozenset[str]:
    return frozenset(prefix(w, language) for w in key_terms(text, language))


def _passage_sentences(passages: Sequence[str], language: TextLanguage) -> list[_Sentence]:
    out = []
    for rank, passage in enumerate(passages):
        heading: frozenset[str] = frozenset()
        position = 0
        for block in paragraphs(passage):
            if is_heading(block):
                heading = _stems(block, language)
                continue
            for text in split_sentences(block):
                out.append(_Sentence(rank, position, text, _stems(text, language), heading))
                position += 1
    return out


def condense(
    question: str,
    passages: Sequence[str],
    budget_tokens: int,
    language: TextLanguage = DEFAULT_TEXT_LANGUAGE,
) -> list[str]:
    """The sentences of ``passages`` that best match ``question``, within ``budget_tokens``,
    in their original order; words are compared in ``language`` (its stop words and stems).

    Every prompt token costs a small model on a CPU a few milliseconds before the first word
    it says, and a 135M model answers no worse from two relevant sentences than from four
    paragraphs. A sentence scores the question words it shares, and those its heading shares
    ("parking" in "Visiting us > Parking" says what "it is free" is about), each weighted by how
    rare it is among the candidate sentences: "saturday" tells more than "open". Ties go to the
    better retrieved passage, then to the earlier sentence, so when no word matches the top
    passage's first sentences are kept.
    """
    candidates = _passage_sentences(passages, language)
    wanted = _stems(question, language)
    frequency = Counter(w for s in candidates for w in s.terms & wanted)
    weight = {w: math.log(1 + len(candidates) / frequency.get(w, 1)) for w in wanted}

    def rank(s: _Sentence) -> tuple[float, int, int]:
        shared = sum(weight[w] for w in s.terms & wanted) + sum(
            weight[w] for w in s.heading & wanted
        )
        return (-shared, s.passage, s.position)

    chosen: list[_Sentence] = []
    used = 0
    for s in sorted(candidates, key=rank):
        cost = estimate_tokens(s.text)
        if used + cost <= budget_tokens and all(c.text != s.text for c in chosen):
            chosen.append(s)
            used += cost
    return [s.text for s in sorted(chosen, key=lambda s: (s.passage, s.position))]
