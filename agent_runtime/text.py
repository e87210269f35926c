"""Words and sentences: the one place text is split, for retrieval, grounding and the guard.

Pure functions of text, no runtime dependency (plugins may use it):

* :func:`tokenise`: the lower-cased words of a text. By default a number keeps its inner ``.``
  and ``:`` ("9:00", "4.5") and a word its apostrophe, as the guard compares facts; with
  ``index=True`` it splits on every punctuation mark, as the full-text index (RediSearch) does.
* :func:`stem`: Snowball's Porter2, the stemmer RediSearch applies to English text.
* :func:`fold`: the light stem the guard compares facts with (plural and possessive forms).
* :func:`prefix`: the crude stem the local model's excerpts are picked with.
* :func:`key_terms`: the folded words of a text that carry its facts.
* :func:`split_sentences` and :func:`is_heading`: how a passage is cut into sentences.
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer

_FACT_WORD = re.compile(r"[a-z0-9]+(?:[.:'][a-z0-9]+)*")
# Letters and digits of any script: RediSearch splits on punctuation and spaces, and such words
# need no escaping in its query syntax.
_INDEX_WORD = re.compile(r"[^\W_]+")


def tokenise(text: str, *, index: bool = False) -> list[str]:
    """The lower-cased words of ``text``, in order, repeats included."""
    if index:
        return [w.lower() for w in _INDEX_WORD.findall(text)]
    return _FACT_WORD.findall(text.lower())


_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Porter2 (Snowball English), as RediSearch stems the indexed text."""
    return str(_STEMMER.stemWord(word))


def fold(word: str) -> str:
    """Plural and possessive forms as one word ("Saturdays" is "saturday").

    The guard compares facts with this rather than :func:`stem`: Porter2 also folds "opening"
    into "open" and "information" into "inform", so a sentence would count as supported by one
    that says something else, and the guard's measured answers (bench/llm_eval.py, whose judge
    uses the same test) would change."""
    word = word.removesuffix("'s")
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


def prefix(word: str) -> str:
    """The first five letters: "parking" and "park", "appointment" and "appointments" are one
    word. Condensing passages for the local model (agent_runtime/plugins/condense.py) matches a
    question's key terms on these; Porter2 there picked other sentences for 4 of the 82 questions
    of bench/llm_eval.py ("My child missed a vaccination, what now?" lost the catch-up sentence),
    which changes the model's answers."""
    return word[:5]


# Words that carry no fact: function words, politeness, and the words of an honest
# "I don't know" (which never needs support).
_STOPWORD_LIST = """
a an the and or but if then so of to in on at by for from with without about as into over
under up down out off again further once here there when where why how all any both each few
more most other some such no nor not only own same than too very can will just should now is
are was were be been being have has had having do does did doing would could may might must
shall i me my we our you your he him his she her it its they them their what which who whom
this that these those am yes yeah sure ok okay please thank thanks hello hi welcome glad
happy help assist let know sorry afraid unfortunately however also well today information
details anything something get got tell say said like one ve ll re s t d m don doesn didn
isn aren wasn weren won can't cannot dont doesnt
"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())


def key_terms(text: str) -> set[str]:
    """The words of ``text`` that carry its facts, folded."""
    words = (fold(w) for w in tokenise(text))
    return {w for w in words if w not in STOPWORDS and (len(w) > 2 or w.isdigit())}


def numbers(text: str) -> tuple[str, ...]:
    """The numbers and times of ``text``, in order ("9:00", "4.5", "2")."""
    return tuple(w for w in tokenise(text) if w[0].isdigit())


_SENTENCE_END = re.compile(
    r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bMrs\.)(?<!\be\.g\.)(?<!\bi\.e\.)"
    r"(?<=[.!?])\s+|\s*\n\s*"
)
"""A sentence ends at . ! or ? followed by a space (not after "Dr." and the like), or at a line
break."""


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def split_keep_tail(text: str) -> list[str]:
    """The complete sentences of ``text`` followed by the unfinished tail (possibly empty): for
    text that is still streaming in."""
    parts = _SENTENCE_END.split(text)
    return [p.strip() for p in parts[:-1] if p.strip()] + [parts[-1]]


_HEADING = re.compile(r"^\s*#|\s>\s")


def is_heading(line: str) -> bool:
    """A Markdown heading or a breadcrumb ("Clinic > Parking"): context for the lines below it,
    not a sentence of its own."""
    return bool(_HEADING.search(line))


def estimate_tokens(text: str) -> int:
    """Rough token count of English text (about four characters a token for SmolLM2's and
    most BPE vocabularies); exact enough for a budget, and needs no tokenizer."""
    return len(text) // 4 + 1
