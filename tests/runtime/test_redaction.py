"""Masking personal data in call records (agent_runtime/redaction.py, redaction_names.py): what
is masked, and what must not be (opening hours, dates, prices, words that only look like a
name)."""

from __future__ import annotations

from typing import get_args

import pytest
from kubevox_api.languages import TEXT_LANGUAGES, TextLanguage
from kubevox_api.voiceagent import PersonalData

from agent_runtime.callrecord import CallRecord
from agent_runtime.redaction import luhn, mask_phone_number, redact
from agent_runtime.redaction_names import INTRODUCTIONS, NOT_NAMES, PARTICLES, TITLES

ALL = ("phoneNumbers", "emails", "cardNumbers", "names")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Call me on +1 415 555 0199.", "Call me on [phone]."),
        ("It's (415) 555-0199 or 415.555.0199", "It's [phone] or [phone]"),
        ("Mon numéro : 06 12 34 56 78", "Mon numéro : [phone]"),
        ("Write to jane.doe+clinic@example.co.uk please", "Write to [email] please"),
        ("My card is 4111 1111 1111 1111, expiry 12/27.", "My card is [card], expiry 12/27."),
        ("Card 5500-0000-0000-0004 please", "Card [card] please"),
        # Not personal data: kept as said.
        ("We are open 8 am to 6 pm, 9:00-12:30, on 2026-12-01.", None),
        ("Your appointment is on 12/01/2026 at 10:30.", None),
        ("That costs 1,250.00 dollars, 2 times.", None),
    ],
)
def test_personal_data_is_masked_and_the_rest_kept(text: str, masked: str | None) -> None:
    assert redact(text, ALL) == (masked if masked is not None else text)


def test_only_the_kinds_named_are_masked() -> None:
    text = "I'm Jane Doe: jane@example.com, +1 415 555 0199, 4111 1111 1111 1111"
    assert redact(text, ["emails"]) == (
        "I'm Jane Doe: [email], +1 415 555 0199, 4111 1111 1111 1111"
    )
    assert (
        redact(text, ["cardNumbers"]) == "I'm Jane Doe: jane@example.com, +1 415 555 0199, [card]"
    )
    assert redact(text, ["names"]) == (
        "I'm [name]: jane@example.com, +1 415 555 0199, 4111 1111 1111 1111"
    )
    assert redact(text, ALL) == "I'm [name]: [email], [phone], [card]"
    assert redact(text, []) == text


def test_the_runtime_masks_every_kind_the_api_accepts() -> None:
    assert set(ALL) == set(get_args(PersonalData))


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # English: introductions, titles alone or after one, initials, a possessive.
        ("My name is Jane Doe.", "My name is [name]."),
        (
            "Hi, this is Jane, calling about my refill",
            "Hi, this is [name], calling about my refill",
        ),
        ("I'm John Smith and I need a refill", "I'm [name] and I need a refill"),
        ("I am Priya.", "I am [name]."),
        ("Just call me Ann.", "Just call me [name]."),
        ("I was speaking with Mr. Brown yesterday", "I was speaking with Mr. [name] yesterday"),
        ("Mrs Okafor said to call", "Mrs [name] said to call"),
        ("This is J. R. Smith", "This is [name]"),
        ("It is for Dr. Brown's patient", "It is for Dr. [name]'s patient"),
        ("I'm Jane and this is Bob.", "I'm [name] and this is [name]."),
        ("MY NAME IS JANE DOE", "MY NAME IS [name]"),
        ("Anyway, I'm Jane Mary Ann Doe", "Anyway, I'm [name] Doe"),  # three words at most
        # French.
        ("Je m'appelle Marie Dupont et j'appelle pour", "Je m'appelle [name] et j'appelle pour"),
        ("Bonjour, je m\u2019appelle Élodie.", "Bonjour, je m\u2019appelle [name]."),  # typographic
        ("Mon nom est Jean-Pierre Martin.", "Mon nom est [name]."),
        ("Bonjour, ici M. Dupont", "Bonjour, ici M. [name]"),
        ("Je suis Mme de la Tour, votre patiente", "Je suis Mme [name], votre patiente"),
        # Spanish.
        ("Hola, me llamo Ana García López de Madrid", "Hola, me llamo [name] de Madrid"),
        ("Mi nombre es Carlos y necesito una cita", "Mi nombre es [name] y necesito una cita"),
        ("Quiero hablar con la Sra. Ruiz", "Quiero hablar con la Sra. [name]"),
        ("Soy Juan del Castillo.", "Soy [name]."),
        # German: nouns are capitalised too, so what ends a name is a lowercase word.
        ("Ich heiße Anna Schmidt und habe Fragen", "Ich heiße [name] und habe Fragen"),
        ("Mein Name ist Jürgen von der Heide.", "Mein Name ist [name]."),
        ("Guten Tag, hier spricht Herr Müller", "Guten Tag, hier spricht Herr [name]"),
        ("Frau Doktor Schmidt ist nicht da", "Frau Doktor [name] ist nicht da"),
        # Arabic, which has no case: a name ends at punctuation or a common word.
        ("اسمي أحمد علي وأريد حجز موعد", "اسمي [name] وأريد حجز موعد"),
        ("واسمي محمد بن سلمان، أتصل بخصوص الوصفة", "واسمي [name]، أتصل بخصوص الوصفة"),
        ("اسمي هو سارة", "اسمي هو [name]"),
        ("موعدي مع الدكتور خالد غداً", "موعدي مع الدكتور [name] غداً"),
    ],
)
def test_a_name_after_an_introduction_or_a_title_is_masked(text: str, masked: str) -> None:
    assert redact(text, ["names"]) == masked


@pytest.mark.parametrize(
    "text",
    [
        "I'm calling about my prescription",
        "I'm fine, thanks. I'm OK.",
        "This is urgent: this is the third time I call.",
        "This is Monday's appointment, and I'm English.",
        "Can I speak to Sales? I'd like to ask for a refund.",
        "We open at 9 a.m. Monday.",
        "my name is jane doe",  # a transcript without capitals: no name is recognised
        "Jane Doe called.",  # a name said alone: not recognised
        "C'est urgent, c'est Noël. Je suis de Paris.",
        "Soy de Madrid y me llamo por teléfono.",
        "Ich heiße Sie herzlich willkommen. Ich bin Arzt, hier ist Ihre Praxis.",
        "أنا بخير، شكرا",
    ],
)
def test_words_that_only_look_like_a_name_are_kept(text: str) -> None:
    assert redact(text, ALL) == text


@pytest.mark.parametrize("language", TEXT_LANGUAGES)
def test_every_api_language_has_name_tables(language: TextLanguage) -> None:
    """Names are recognised in every language kubevox reads (kubevox_api.languages)."""
    assert INTRODUCTIONS[language]
    assert TITLES[language]
    assert NOT_NAMES[language]
    assert set(INTRODUCTIONS) == set(TITLES) == set(PARTICLES) == set(NOT_NAMES)
    assert set(NOT_NAMES) == set(TEXT_LANGUAGES)


def test_a_name_is_masked_with_the_rest_of_what_the_caller_said() -> None:
    said = (
        "Hello, my name is Jane Doe, my card is 4111 1111 1111 1111 and you can reach me at "
        "jane.doe@example.com or +1 415 555 0199. Je m'appelle Marie. Ich heiße Anna."
    )
    assert redact(said, ALL) == (
        "Hello, my name is [name], my card is [card] and you can reach me at "
        "[email] or [phone]. Je m'appelle [name]. Ich heiße [name]."
    )


def test_sixteen_digits_that_fail_the_luhn_check_are_no_card() -> None:
    assert luhn("4111111111111111")
    assert not luhn("4111111111111112")
    assert redact("Ref 4111 1111 1111 1112", ["cardNumbers"]) == "Ref 4111 1111 1111 1112"


def test_a_phone_callers_number_keeps_its_last_four_digits() -> None:
    assert mask_phone_number("+14155550199") == "+*******0199"
    phone = {"caller": "phone", "caller_number": "+14155550199", "log_transcripts": True}
    masked = CallRecord("c", "r", "a", "ns", redact=frozenset(ALL), **phone).finish()
    assert masked["caller_number"] == "+*******0199"
    assert CallRecord("c", "r", "a", "ns", **phone).finish()["caller_number"] == "+14155550199"
