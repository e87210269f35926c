"""Words and sentences: the one place text is split, for retrieval, grounding and the guard.

Pure functions of text, no runtime dependency (plugins may use it). Every function that compares
words takes the text's ``language``, one of :data:`kubevox_api.languages.TEXT_LANGUAGES`
(default English); its stop words and stemmer are in :mod:`.text_languages`.

* :func:`tokenise`: the lower-cased words of a text. By default a number keeps its inner ``.``
  and ``:`` ("9:00", "4.5") and an English word its apostrophe, as the guard compares facts
  (other languages split at apostrophes: French "l'ordonnance" is "l" and "ordonnance"); with
  ``index=True`` it splits on every punctuation mark, as the full-text index (RediSearch) does.
* :func:`index_text`: text as handed to RediSearch, so that it splits and lower-cases it as
  :func:`tokenise` does.
* :func:`stem`: the language's Snowball stemmer, the one RediSearch applies to indexed text.
* :func:`fold`: the stem the guard compares facts with (English: plural and possessive forms).
* :func:`prefix`: the crude stem the local model's excerpts are picked with.
* :func:`key_terms`: the folded words of a text that carry its facts.
* :func:`detect_language`: which of the languages a text is written in, if it tells.
* :func:`paragraphs`, :func:`split_sentences` and :func:`is_heading`: how a passage is cut into
  sentences.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import snowballstemmer
from kubevox_api.languages import DEFAULT_TEXT_LANGUAGE, TEXT_LANGUAGES, TextLanguage

from .text_languages import LETTERS, NEGATIONS, QUERY_STOPWORDS, SNOWBALL, STOPWORDS

EN: TextLanguage = DEFAULT_TEXT_LANGUAGE

_FACT_WORD = {
    # English keeps "don't" one word, as the guard was measured with.
    True: re.compile(r"[^\W_]+(?:[.:'][^\W_]+)*"),
    False: re.compile(r"[^\W_]+(?:[.:][^\W_]+)*"),
}
# Letters and digits of any script: RediSearch splits on punctuation and spaces, and such words
# need no escaping in its query syntax.
_INDEX_WORD = re.compile(r"[^\W_]+")
_ARABIC_MARKS = re.compile("[\u0640\u064b-\u065f\u0670]")
"""Tatweel and the short-vowel marks (tashkeel): Arabic text is written with and without them."""


def _normal(text: str) -> str:
    if text.isascii():
        return text.lower()
    return _ARABIC_MARKS.sub("", unicodedata.normalize("NFC", text)).lower()


def tokenise(text: str, *, index: bool = False, language: TextLanguage = EN) -> list[str]:
    """The lower-cased words of ``text``, in order, repeats included."""
    if index:
        return _INDEX_WORD.findall(_normal(text))
    return _FACT_WORD[language == EN].findall(_normal(text))


@lru_cache(maxsize=4096)
def _index_char(char: str) -> str:
    if unicodedata.category(char)[0] in "LMN":
        return char.lower()
    return "'" if char in "\u2018\u2019\u02bc" else " "


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_LINE_BREAK = re.compile(r"[\r\n\f\v]")


def index_text(text: str, language: TextLanguage = EN) -> str:
    """``text`` as RediSearch should index it, so that its words are those of
    ``tokenise(text, index=True)``. RediSearch lower-cases ASCII letters only and splits words
    at ASCII punctuation, spaces and tabs only: German "Öffnungszeiten" would stay capitalised
    (no question would match it), a French word after a typographic apostrophe (U+2019) or an
    Arabic one before the Arabic comma would be glued to it, and so would the last word of a
    line to the first of the next. Here other letters are lower-cased, typographic apostrophes
    made ASCII, Arabic's optional vowel marks dropped and every other non-ASCII punctuation mark
    or symbol made a space; line breaks too, except in English: English passages are indexed as
    they were measured (docs/benchmarks.md; the line breaks' fix measured apart is a change of
    its own). ASCII English text is returned as it is."""
    if language != EN:
        text = _LINE_BREAK.sub(" ", text)
    if text.isascii():
        return text
    text = _ARABIC_MARKS.sub("", unicodedata.normalize("NFC", text))
    return _NON_ASCII.sub(lambda m: _index_char(m.group()), text)


_STEMMERS = {lang: snowballstemmer.stemmer(name) for lang, name in SNOWBALL.items()}


@lru_cache(maxsize=200_000)
def stem(word: str, language: TextLanguage = EN) -> str:
    """The language's Snowball stem (Porter2 for English), as RediSearch stems indexed text."""
    return str(_STEMMERS[language].stemWord(word))


_AND_THE = ("\u0648\u0627\u0644", "\u0641\u0627\u0644")
"""Arabic "wa-al", "fa-al": a conjunction before the article."""


def fold(word: str, language: TextLanguage = EN) -> str:
    """The stem the guard compares facts with.

    English: plural and possessive forms as one word ("Saturdays" is "saturday"). The guard
    compares English facts with this rather than :func:`stem`: Porter2 also folds "opening"
    into "open" and "information" into "inform", so a sentence would count as supported by one
    that says something else, and the guard's measured answers (bench/llm_eval.py, whose judge
    uses the same test) would change. Other languages: their Snowball stem, as no plural rule
    folds their inflections (German "Termin", "Termine", "Terminen") or Arabic's attached
    article and conjunctions ("الصيدلية", "بالصيدلية"; "and" before the
    article, which Snowball leaves, is dropped first)."""
    if language == "ar" and word[:3] in _AND_THE:
        word = word[1:]
    if language != EN:
        return stem(word, language)
    word = word.removesuffix("'s")
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


def prefix(word: str, language: TextLanguage = EN) -> str:
    """English: the first five letters: "parking" and "park", "appointment" and "appointments"
    are one word. Condensing passages for the local model (agent_runtime/plugins/condense.py)
    matches a question's key terms on these; Porter2 there picked other sentences for 4 of the 82
    questions of bench/llm_eval.py ("My child missed a vaccination, what now?" lost the catch-up
    sentence), which changes the model's answers. Other languages: ``word`` itself, a key term
    being their Snowball stem already (five letters of Arabic would keep the article)."""
    return word[:5] if language == EN else word


def _fact_word(word: str) -> bool:
    return len(word) > 2 or word.isdigit()


def key_terms(text: str, language: TextLanguage = EN) -> set[str]:
    """The words of ``text`` that carry its facts, folded."""
    stop = STOPWORDS[language]
    if language == EN:
        # A negation is no fact of its own: the guard compares it apart (negated()), so "aren't"
        # and "are not" say the same.
        words = (fold(w) for w in tokenise(text) if not w.endswith("n't"))
        return {w for w in words if w not in stop and _fact_word(w)}
    # A stop word is known by its written form: its stem may be another word's.
    folded = (fold(w, language) for w in tokenise(text, language=language) if w not in stop)
    return {w for w in folded if _fact_word(w)}


def query_words(text: str, language: TextLanguage = EN) -> list[str]:
    """The distinct words of ``text`` a full-text query searches, in order: not the language's
    query stop words, and longer than one letter."""
    stop = QUERY_STOPWORDS[language]
    return [w for w in dict.fromkeys(tokenise(text, index=True)) if w not in stop and len(w) > 1]


_ARABIC_LETTER = re.compile("[\u0621-\u064a\u0671-\u06d3]")
_LETTER = re.compile(r"[^\W\d_]")
DETECT_WORDS = 2000
"""Words of a text :func:`detect_language` reads: a document tells its language long before."""


def detect_language(
    text: str, candidates: Iterable[TextLanguage] = TEXT_LANGUAGES
) -> TextLanguage | None:
    """The language of ``text`` among ``candidates``, or None when the text does not tell.

    Arabic by its script (most of the letters). The others by their stop words and the letters
    only one of them writes (French "ç", Spanish "ñ", German "ß", ...): each word and letter
    counts for every language whose list holds it, and a language must count more than any
    other. Deterministic and cheap, and reliable on a sentence of ordinary prose; it can fail on
    a few words with no function word ("pharmacy opening hours", "horaires pharmacie"), on
    text that mixes languages (the majority wins), and it knows only these five: Italian or
    Portuguese text is taken for whichever shares most of its little words."""
    allowed = list(dict.fromkeys(candidates))
    if not allowed:
        return None
    if len(allowed) == 1:
        return allowed[0]
    sample = " ".join(text.split()[:DETECT_WORDS])
    if "ar" in allowed:
        letters = len(_LETTER.findall(sample))
        if letters and len(_ARABIC_LETTER.findall(sample)) * 2 > letters:
            return "ar"
    words = Counter(tokenise(sample, index=True))
    chars = Counter(sample.lower())
    score = {
        lang: sum(n for w, n in words.items() if w in STOPWORDS[lang] or w in QUERY_STOPWORDS[lang])
        + sum(chars[c] for c in LETTERS[lang])
        for lang in allowed
        if lang != "ar"
    }
    ranked = sorted(score.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] == 0 or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


_ANSWER_WORD = re.compile(r"^\s*(no|non|nein|yes|oui|sí|si|ja|نعم|لا)\s*[,،!.]\s*", re.I)
"""A yes or no that answers the question, before the statement itself ("No, we are closed")."""


def negated(text: str, language: TextLanguage = EN) -> bool:
    """Whether the statement in ``text`` is negative ("there is no parking"); a leading yes or no
    answering a question is not part of it."""
    words = tokenise(_ANSWER_WORD.sub("", text), language=language)
    negations = NEGATIONS[language]
    return any(w in negations or (language == EN and w.endswith("n't")) for w in words)


def numbers(text: str, language: TextLanguage = EN) -> tuple[str, ...]:
    """The numbers and times of ``text``, in order ("9:00", "4.5", "2")."""
    return tuple(w for w in tokenise(text, language=language) if w[0].isdigit())


_SENTENCE_END = re.compile(
    r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bMrs\.)(?<!\be\.g\.)(?<!\bi\.e\.)"
    r"(?<=[.!?\u061f])\s+|\s*\n\s*"
)
"""A sentence ends at . ! ? or Arabic's question mark followed by a space (not after "Dr." and
the like), or at a line break."""


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def split_keep_tail(text: str) -> list[str]:
    """The complete sentences of ``text`` followed by the unfinished tail (possibly empty): for
    text that is still streaming in."""
    parts = _SENTENCE_END.split(text)
    return [p.strip() for p in parts[:-1] if p.strip()] + [parts[-1]]


_HEADING = re.compile(r"^\s*#|\s>\s")


_BLOCK_START = re.compile(r"^\s*(#|[-*+]\s|\d+[.)]\s|\|)|\s>\s")
"""A line that starts a block of its own: a heading, a list item, a table row, a breadcrumb."""
_ENDS_CLAUSE = re.compile(r"[.!?:;\u061f]\s*$")


def _wrapped(previous: str, line: str) -> bool:
    """Whether ``line`` goes on with the sentence ``previous`` broke off: that one ends
    mid-clause and this one starts in lower case or with a number ("... on Saturdays from" /
    "9 am to 1 pm."). A capitalised line is taken as new: a passage's first line is its
    heading context ("Opening hours"), which reads as a sentence's start."""
    if _ENDS_CLAUSE.search(previous) or _BLOCK_START.search(line) or _HEADING.search(previous):
        return False
    first = line.lstrip()[:1]
    return first.islower() or first.isdigit()


def paragraphs(text: str) -> list[str]:
    """The lines of a passage, a sentence the author wrapped over several lines joined into
    one; blank lines dropped."""
    blocks: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if blocks and _wrapped(blocks[-1], line):
            blocks[-1] = f"{blocks[-1]} {line.strip()}"
        else:
            blocks.append(line.strip())
    return blocks


def is_heading(line: str) -> bool:
    """A Markdown heading or a breadcrumb ("Clinic > Parking"): context for the lines below it,
    not a sentence of its own."""
    return bool(_HEADING.search(line))


def estimate_tokens(text: str) -> int:
    """Rough token count of English text (about four characters a token for SmolLM2's and
    most BPE vocabularies); exact enough for a budget, and needs no tokenizer."""
    return len(text) // 4 + 1
