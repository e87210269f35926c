"""The languages kubevox reads text in: the one list, keyed by ISO 639-1 codes.

A KnowledgeBase's documents are analysed in one of :data:`TEXT_LANGUAGES` (full-text stemming,
stop words, the grounding guard's and condensing's word comparisons), or ``auto`` to detect it
per document among them. The runtime's per-language tables (``agent_runtime.text``) are keyed by
the same codes; a test checks that every language here has them. A VoiceAgent's
``spec.language`` is a BCP 47 tag: its primary subtag (:func:`primary_language`) picks both its
built-in phrases (:mod:`.phrases`) and the language its text is compared in.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

TextLanguage = Literal["en", "fr", "es", "de", "ar"]
"""English, French, Spanish, German, Arabic: the languages RediSearch and Snowball both stem."""
TEXT_LANGUAGES: Final[tuple[TextLanguage, ...]] = get_args(TextLanguage)

AUTO_LANGUAGE: Final = "auto"
KnowledgeLanguage = Literal[TextLanguage, "auto"]
"""What ``spec.language`` and a source's ``language`` of a KnowledgeBase accept."""
KNOWLEDGE_LANGUAGES: Final[tuple[str, ...]] = (*TEXT_LANGUAGES, AUTO_LANGUAGE)

DEFAULT_TEXT_LANGUAGE: Final[TextLanguage] = "en"
"""A KnowledgeBase's language when it sets none (what every KnowledgeBase was before languages
could be chosen), and the language of text whose own is not one of :data:`TEXT_LANGUAGES`."""


def primary_language(language: str) -> str:
    """The primary subtag of a BCP 47 tag, lower-cased: ``fr`` for ``fr-CA``."""
    return language.split("-", 1)[0].lower()


def text_language(language: str | None) -> TextLanguage:
    """The text language of a BCP 47 tag (``fr`` for ``fr-CA``); English for a language kubevox
    has no tables for, or none."""
    primary = primary_language(language or DEFAULT_TEXT_LANGUAGE)
    for code in TEXT_LANGUAGES:
        if code == primary:
            return code
    return DEFAULT_TEXT_LANGUAGE
