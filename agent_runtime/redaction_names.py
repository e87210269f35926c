"""Masking people's names in text that leaves the worker, where they are detectable without a
model: the words that follow an introduction ("my name is", "je m'appelle", "ich heiße", "اسمي")
or a title ("Mr.", "Mme", "Frau", "السيد"). Pure. The tables are keyed by the codes of
:data:`kubevox_api.languages.TEXT_LANGUAGES` (a test checks every one of them is here).

For each language:

* ``INTRODUCTIONS``: the phrases a name follows, one per line, matched whatever their case.
* ``TITLES``: the titles a name follows, after an introduction ("this is Dr. Brown") or alone
  ("Mr. Brown called"); kept as said. Written without the full stop that may end them, unless
  it must (French ``m.``: a lone ``m`` is a letter).
* ``PARTICLES``: the lowercase words inside a name (``de la``, ``van``), part of it only when a
  name word follows them.
* ``NOT_NAMES``: words written with a capital after an introduction that are no name (``I``,
  days, nationalities, German nouns, the formal ``Sie``); in Arabic, which has no case, also its
  function words (:data:`agent_runtime.text_languages.STOPWORDS`): they are where a name ends.

A name is one to three words. In a script with case each starts with a capital: "I'm fine",
"this is urgent" keep their words, and so does a transcript written all in lowercase. In a
script without case (Arabic) a name runs to the first punctuation or common word.

Every language's phrases apply to every call, whatever ``spec.language``: a caller may
introduce themselves in their own language to an agent that speaks another, and a multilingual
speech recogniser writes what they said. A phrase of one language is rarely said in another, so
the cost is small; a name that leaks is not.
"""

from __future__ import annotations

import re
from typing import Final

from kubevox_api.languages import TextLanguage

from .text_languages import STOPWORDS

NAME_MASK: Final = "[name]"
MAX_NAME_WORDS: Final = 3

# "name is" is also "my name is", "his name is", "the patient's name is"; so in each language.
_INTRODUCTIONS: dict[TextLanguage, str] = {
    "en": """
name is
name's
named
this is
i'm
i am
call me
speaking with
speaking to
speak with
speak to
talk to
talk with
ask for
""",
    "fr": """
je m'appelle
il s'appelle
elle s'appelle
appelez-moi
appelle-moi
nom est
nom de famille est
prénom est
je suis
ici
parler à
parler avec
""",
    "es": """
me llamo
se llama
llámame
nombre es
soy
le habla
hablar con
""",
    "de": """
ich heiße
ich heisse
er heißt
er heisst
sie heißt
sie heisst
name ist
name lautet
nenn mich
nennen sie mich
hier spricht
""",
    # "I am" (أنا) is left out: without case, nothing tells "أنا أحمد" from "أنا بخير" (I'm fine).
    "ar": """
اسمي
اسمي هو
إسمي
واسمي
اسمه
اسمها
إسمه
يدعى
تدعى
أدعى
""",
}

_TITLES: dict[TextLanguage, str] = {
    "en": "mr mrs ms miss mx dr doctor prof professor",
    "fr": "m. mme mlle monsieur madame mademoiselle docteur",
    "es": "sr sra srta señor señora señorita dra doctora",
    "de": "herr herrn frau doktor",
    "ar": "السيد السيدة الآنسة الانسة الدكتور الدكتورة الأستاذ الأستاذة الاستاذ الاستاذة",
}

_PARTICLES: dict[TextLanguage, str] = {
    "en": "",
    "fr": "de du des la le",
    "es": "de del la las los",
    "de": "von vom van der den zu",
    "ar": "",  # بن and عبد are name words themselves: the script has no case to tell them apart
}

# Compared as _base writes a word. Months that are also given names (April, May, June, August)
# are left out: a name that leaks costs more than a month masked.
_NOT_NAMES: dict[TextLanguage, str] = {
    "en": """
i a an the and or but so it we you he she they my your our this that not no yes ok okay sorry
hello hi thanks just also here there well monday tuesday wednesday thursday friday saturday
sunday january february march september october november december english french spanish
german arabic italian american british canadian sales support billing reception someone
anyone somebody anybody
""",
    "fr": """
je j c l d qu vous tu il elle on nous oui non bonjour bonsoir merci désolé désolée ok
""",
    "es": "yo usted tú él ella sí no hola gracias buenos buenas vale ok",
    "de": """
ich sie ihr ihre ihren ihrem ihrer ihres ihnen du ja nein hallo danke bitte guten tag morgen
abend termin termine praxis rezept arzt ärztin patient patientin bescheid montag dienstag
mittwoch donnerstag freitag samstag sonntag januar februar märz oktober november dezember
""",
    "ar": """
أريد اريد أود اود أتصل اتصل اتصلت أحتاج احتاج بخصوص حول عندي موعد بخير وأنا وانا غدا الآن الان
صباحا مساء أمس امس
""",
}

INTRODUCTIONS: Final[dict[TextLanguage, tuple[str, ...]]] = {
    lang: tuple(line.strip() for line in text.splitlines() if line.strip())
    for lang, text in _INTRODUCTIONS.items()
}
TITLES: Final[dict[TextLanguage, frozenset[str]]] = {
    lang: frozenset(words.split()) for lang, words in _TITLES.items()
}
PARTICLES: Final[dict[TextLanguage, frozenset[str]]] = {
    lang: frozenset(words.split()) for lang, words in _PARTICLES.items()
}
NOT_NAMES: Final[dict[TextLanguage, frozenset[str]]] = {
    lang: frozenset(words.split()) | (STOPWORDS["ar"] if lang == "ar" else frozenset())
    for lang, words in _NOT_NAMES.items()
}

_APOSTROPHES = "['\u2019]"
"""The typewriter apostrophe and the typographic one, which speech recognisers write too."""
_ANY_PARTICLE = frozenset[str]().union(*PARTICLES.values())
_ANY_NOT_NAME = frozenset[str]().union(*NOT_NAMES.values())
_ARABIC_CONJUNCTIONS = ("و", "ف")
"""Written onto the next word ("وأريد", and I want): a name ends there as at the word alone."""


def _phrase_pattern(phrase: str) -> str:
    """A table phrase as a regular expression: any run of spaces, either apostrophe."""
    words = (re.escape(w).replace("'", _APOSTROPHES) for w in phrase.split())
    return r"\s+".join(words)


def _alternation(phrases: set[str]) -> str:
    # Longest first: "اسمي هو" before "اسمي", so that "هو" (is) is not taken for the name.
    return "|".join(_phrase_pattern(p) for p in sorted(phrases, key=len, reverse=True))


_NOT_IN_A_WORD = r"(?<![\w'\u2019.-])"
_TITLE = "|".join(
    # A title written with its full stop in the table needs it ("m." is French, "m" a letter).
    _phrase_pattern(t) if t.endswith(".") else rf"{_phrase_pattern(t)}\.?"
    for t in sorted(set[str]().union(*TITLES.values()), key=len, reverse=True)
)
_INTRODUCTION = _alternation(set[str]().union(*INTRODUCTIONS.values()))
_CUE = re.compile(
    rf"{_NOT_IN_A_WORD}(?:{_INTRODUCTION}|(?P<title>{_TITLE}))(?=\s)",
    re.IGNORECASE,
)
"""Where a name may follow: an introduction or a title."""
_TITLE_NEXT = re.compile(rf"\s+(?:{_TITLE})(?=\s)", re.IGNORECASE)
_LETTERS = r"(?:[^\W\d_]|[\u0610-\u061a\u064b-\u065f\u0670])+"  # Arabic vowel marks included
_NEXT_WORD = re.compile(rf"\s+({_LETTERS}(?:['\u2019-]{_LETTERS})*)(\.(?=\s))?")
"""The next word after white space (hyphens and apostrophes inside it), with the full stop of
an initial ("J. Smith")."""


_POSSESSIVE = re.compile(rf"{_APOSTROPHES}s$")


_ARABIC_MARKS = re.compile(r"[\u064b-\u065f\u0670]")


def _base(word: str) -> str:
    """``word`` as the tables write it: lower-cased, before any apostrophe ("I'm" is "i",
    "Monday's" is "monday"), without Arabic vowel marks ("غداً" is "غدا")."""
    return _ARABIC_MARKS.sub("", re.split(_APOSTROPHES, word.casefold(), maxsplit=1)[0])


def _is_name_word(word: str, initial: bool) -> bool:
    """Whether ``word`` may be part of a name: capitalised (or in a script without case), and
    none of the words that only look like one. An initial ("J.") is one when capitalised."""
    if word[0].islower():
        return False
    if initial:
        return True
    base = _base(word)
    if base in _ANY_NOT_NAME:
        return False
    return not (base.startswith(_ARABIC_CONJUNCTIONS) and base[1:] in _ANY_NOT_NAME)


def _name_span(text: str, start: int, after_title: bool) -> tuple[int, int] | None:
    """Where the name that begins after ``start`` begins and ends, or None if no name follows.
    A name may begin with a particle only after a title ("Mme de la Tour", not "je suis de
    Paris")."""
    pos, begin, end, words = start, None, None, 0
    while words < MAX_NAME_WORDS:
        match = _NEXT_WORD.match(text, pos)
        if match is None:
            break
        word = match.group(1)
        if begin is None:
            begin = match.start(1)
        if (end is not None or after_title) and word in _ANY_PARTICLE:
            pos = match.end(1)  # part of the name only if a name word follows
            continue
        initial = len(word) == 1 and match.group(2) is not None
        if not _is_name_word(word, initial):
            break
        words += 1
        if possessive := _POSSESSIVE.search(word):
            return begin, match.start(1) + possessive.start()  # "Dr. [name]'s office"
        pos = end = match.end() if initial else match.end(1)  # "J." keeps its full stop
    return None if begin is None or end is None else (begin, end)


def mask_names(text: str) -> str:
    """``text`` with each name that follows an introduction or a title replaced by
    ``[name]``; the introduction and the title are kept."""
    out: list[str] = []
    done = 0
    for cue in _CUE.finditer(text):
        if cue.start() < done:
            continue  # inside a name already masked
        start = cue.end()
        for _ in range(2):  # "this is Mrs. Dr. Brown", "Frau Doktor Schmidt"
            title = _TITLE_NEXT.match(text, start)
            if title is None:
                break
            start = title.end()
        after_title = start != cue.end() or cue.group("title") is not None
        span = _name_span(text, start, after_title)
        if span is None:
            continue
        out.append(text[done : span[0]])
        out.append(NAME_MASK)
        done = span[1]
    out.append(text[done:])
    return "".join(out)
