"""The text module in every language a knowledge base can be in: one table per API language,
the detector on real sentences, stems and stop words, what RediSearch is given, and how a
question's full-text query is built."""

from __future__ import annotations

import pytest
from kubevox_api.languages import (
    AUTO_LANGUAGE,
    KNOWLEDGE_LANGUAGES,
    TEXT_LANGUAGES,
    TextLanguage,
    text_language,
)
from kubevox_api.phrases import BUILT_IN_PHRASES

from agent_runtime.knowledge.terms import (
    decode_languages,
    encode_languages,
    present_languages,
    query_languages,
    text_query,
)
from agent_runtime.text import (
    detect_language,
    fold,
    index_text,
    key_terms,
    numbers,
    query_words,
    split_sentences,
    stem,
    tokenise,
)
from agent_runtime.text_languages import (
    INDEX_STOPWORDS,
    LETTERS,
    QUERY_STOPWORDS,
    SNOWBALL,
    STOPWORDS,
)
from tests.support.languages import DOCUMENTS, QUESTIONS


@pytest.mark.parametrize("language", TEXT_LANGUAGES)
def test_every_api_language_has_its_tables(language: TextLanguage) -> None:
    """The API's list (kubevox_api.languages) is the one list: each of its languages has a
    stemmer RediSearch knows, stop words, query stop words, and built-in phrases."""
    assert language in SNOWBALL
    assert stem("pharmacies", language)
    assert len(STOPWORDS[language]) >= 40
    assert QUERY_STOPWORDS[language] >= INDEX_STOPWORDS
    assert language in LETTERS
    assert language in BUILT_IN_PHRASES
    assert set(SNOWBALL) == set(STOPWORDS) == set(QUERY_STOPWORDS) == set(TEXT_LANGUAGES)
    assert (*TEXT_LANGUAGES, AUTO_LANGUAGE) == KNOWLEDGE_LANGUAGES


@pytest.mark.parametrize(
    ("language", "text"),
    [(lang, q) for lang, qs in QUESTIONS.items() for q in qs] + list(DOCUMENTS.items()),
)
def test_the_detector_tells_each_language(language: TextLanguage, text: str) -> None:
    assert detect_language(text) == language
    # Among the languages of a knowledge base, too.
    others = [lang for lang in TEXT_LANGUAGES if lang != language]
    assert detect_language(text, [others[0], language]) == language


@pytest.mark.parametrize(
    "text", ["horaires pharmacie", "Apotheke", "8:00", "", "Solara", "RFC 2119 PDF"]
)
def test_the_detector_says_when_text_does_not_tell(text: str) -> None:
    assert detect_language(text) is None


def test_the_detector_keeps_to_the_candidates() -> None:
    assert detect_language(QUESTIONS["es"][0], ["en", "fr"]) == "fr"  # "la" is French too
    assert detect_language(QUESTIONS["ar"][0], ["en", "fr"]) is None
    assert detect_language("anything", ["de"]) == "de"
    assert detect_language("anything", []) is None


def test_stems_are_the_languages_snowball_stems() -> None:
    # What RediSearch gives (FT.EXPLAIN ... LANGUAGE <name>), checked once by hand.
    assert stem("pharmacies") == "pharmaci"
    assert stem("pharmacies", "fr") == stem("pharmacie", "fr") == "pharmac"
    assert stem("sábados", "es") == "sab"
    assert stem("überweisung", "de") == "uberweis"
    assert stem("المواعيد", "ar") == stem("مواعيد", "ar")


def test_key_terms_use_the_languages_stop_words_and_stems() -> None:
    assert key_terms("The pharmacy opens on Saturdays at 9:00 am.") == {
        "pharmacy",
        "open",
        "saturday",
        "9:00",
    }
    assert key_terms("La pharmacie est ouverte le samedi à 9 h.", "fr") == {
        "pharmac",
        "ouvert",
        "samed",
        "9",
    }
    # Elision: "l'ordonnance" is the word "ordonnance".
    assert key_terms("Apportez l\u2019ordonnance d'origine.", "fr") == {"apport", "ordon", "origin"}
    assert key_terms("Die Apotheke hat samstags geöffnet.", "de") == {
        "apothek",
        "samstag",
        "geoffn",
    }
    assert key_terms("La farmacia abre los sábados.", "es") == {"farmaci", "abre", "sab"}
    # The article and the conjunction attached to an Arabic word are not part of its fact.
    assert key_terms("والصيدلية مفتوحة يوم السبت", "ar") == key_terms(
        "الصيدلية مفتوحة يوم السبت", "ar"
    )
    # An honest "I don't know" carries no fact in any language.
    assert key_terms("Je suis désolé, je n'ai pas cette information.", "fr") == set()
    assert key_terms("Lo siento, no tengo esa información.", "es") == set()
    assert key_terms("Leider habe ich dazu keine Informationen.", "de") == set()
    assert key_terms("عذرا، لا أعرف", "ar") == set()


def test_english_keeps_its_measured_fold() -> None:
    """English compares facts with plural folding, not Porter2 (see text.fold)."""
    assert fold("opening") == "opening"
    assert fold("Saturdays".lower()) == "saturday"
    assert fold("ouvertes", "fr") == "ouvert"


def test_words_of_every_script() -> None:
    assert tokenise("Öffnungszeiten: 9\u201312 Uhr") == ["öffnungszeiten", "9", "12", "uhr"]
    assert tokenise("don't", index=True) == ["don", "t"]
    assert tokenise("don't") == ["don't"]
    assert tokenise("l'accueil", language="fr") == ["l", "accueil"]
    assert tokenise("شُكْرًا", index=True) == ["شكرا"]  # the optional vowel marks go
    assert numbers("de 8 h 30 à 12 h 30, 4,50 €", "fr") == ("8", "30", "12", "30", "4", "50")
    assert split_sentences("متى تفتح الصيدلية؟ يوم السبت.") == ["متى تفتح الصيدلية؟", "يوم السبت."]


def test_redisearch_is_given_text_it_splits_and_lower_cases_as_kubevox_does() -> None:
    english = "Riverside Family Clinic > Hours\nOpen Monday to Friday, 8:00 am - 6:30 pm."
    assert index_text(english) is english  # English ASCII text is indexed as written
    # RediSearch does not split at a line break: other languages' are made spaces.
    assert index_text("Horaires\nLa pharmacie", "fr") == "Horaires La pharmacie"
    # RediSearch lower-cases the ASCII letters itself.
    assert index_text("ÖFFNUNGSZEITEN der Praxis") == "öFFNUNGSZEITEN der Praxis"
    assert index_text("l\u2019ordonnance «originale»") == "l'ordonnance  originale "
    assert index_text("¿Dónde?") == " Dónde?"
    assert index_text("المواعيدُ، متاحة") == "المواعيد  متاحة"
    for text in DOCUMENTS.values():
        assert tokenise(index_text(text), index=True) == tokenise(text, index=True)


@pytest.mark.parametrize("language", TEXT_LANGUAGES)
def test_a_query_never_holds_redisearch_stop_words(language: TextLanguage) -> None:
    """RediSearch 2.10 crashes on a union of two of its stop words and a term."""
    words = query_words("is it normal to have a sore arm after the vaccine?", language)
    assert not set(words) & INDEX_STOPWORDS
    assert "vaccine" in words


def test_query_words_leave_out_the_languages_function_words() -> None:
    assert query_words(QUESTIONS["fr"][0], "fr") == ["pharmacie", "ouverte", "samedi"]
    assert query_words(QUESTIONS["es"][0], "es") == ["abre", "farmacia", "sábados"]
    assert query_words(QUESTIONS["de"][0], "de") == ["apotheke", "samstag", "geöffnet"]
    assert query_words(QUESTIONS["ar"][0], "ar") == ["تفتح", "الصيدلية", "يوم", "السبت"]
    # English is as measured (docs/benchmarks.md): question words and fillers.
    assert query_words(QUESTIONS["en"][0]) == ["pharmacy", "open", "saturday"]


def test_text_query_counts_common_words_by_the_questions_stems() -> None:
    question = "La pharmacie est-elle ouverte le samedi ?"
    assert text_query(question, language="fr") == "pharmacie|ouverte|samedi"
    assert text_query(question, {"pharmac": 5000}, "fr") == "(ouverte|samedi) ~pharmacie"
    # Stemmed in English, "pharmacie" is "pharmaci": the French count does not apply.
    assert text_query("pharmacie samedi", {"pharmac": 5000}, "en") == "(pharmacie|samedi)"


def test_a_question_is_searched_in_its_language_among_the_knowledge_bases() -> None:
    both: list[TextLanguage] = ["en", "fr"]
    assert query_languages(QUESTIONS["fr"][0], both) == ["fr"]
    assert query_languages(QUESTIONS["en"][0], both) == ["en"]
    # A knowledge base of one language: no detection, as before languages.
    assert query_languages(QUESTIONS["fr"][0], ["en"]) == ["en"]
    assert query_languages("anything", []) == ["en"]
    # Words that do not tell: the agent's language if the knowledge base has it, else all.
    assert query_languages("horaires pharmacie", both, "fr") == ["fr"]
    assert query_languages("horaires pharmacie", both, "de") == both
    assert query_languages("horaires pharmacie", both) == both


def test_a_versions_languages_round_trip_and_default_to_english() -> None:
    raw = encode_languages({"en": 2, "fr": 4})
    assert raw == '{"fr":4,"en":2}'
    assert decode_languages(raw) == {"fr": 4, "en": 2}
    assert present_languages(decode_languages(raw)) == ["fr", "en"]
    # An index built before languages were recorded: all of it was English.
    assert decode_languages(None) == decode_languages(b"not json") == {}
    assert present_languages({}) == ["en"]


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("fr-CA", "fr"),
        ("es-419", "es"),
        ("de", "de"),
        ("ar-EG", "ar"),
        ("it-IT", "en"),
        (None, "en"),
    ],
)
def test_an_agents_tag_picks_its_text_language(tag: str | None, language: str) -> None:
    assert text_language(tag) == language
