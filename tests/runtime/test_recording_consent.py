"""The caller's answer to the recording notice (agent_runtime/recording/consent.py): a yes or a
no in each language the API accepts for ``consent: required``, a refusal winning over a yes,
anything else unclear; the question settled by the first words, the consent key, or silence."""

from __future__ import annotations

import asyncio

import pytest
from kubevox_api.languages import TEXT_LANGUAGES

from agent_runtime.recording.consent import NO, YES, Consent, ConsentQuestion, answer_of


@pytest.mark.parametrize(
    ("said", "language", "answer"),
    [
        ("Yes, that's fine.", "en", "yes"),
        ("Sure, go ahead", "en-GB", "yes"),
        ("No thanks.", "en", "no"),
        ("I'd rather not.", "en", "no"),
        ("Yes. Actually, no.", "en", "no"),  # a refusal wins
        ("Why not", "en", "no"),  # unclear on purpose is a no: never recorded by doubt
        ("What did you say?", "en", None),
        ("Oui, d'accord.", "fr", "yes"),
        ("Non, je refuse.", "fr", "no"),
        ("Sí, claro.", "es", "yes"),
        ("Si, vale", "es", "yes"),  # a transcript without the accent
        ("No, prefiero que no.", "es", "no"),
        ("Ja, einverstanden.", "de", "yes"),
        ("Nein, lieber nicht.", "de", "no"),
        ("نعم، أوافق", "ar", "yes"),
        ("لا، شكرا", "ar", "no"),
        ("Okay", "ja", "yes"),  # a language kubevox has no table for reads as English
    ],
)
def test_a_yes_a_no_or_neither(said: str, language: str, answer: str | None) -> None:
    assert answer_of(said, language) == answer


def test_every_language_of_the_api_has_both_tables() -> None:
    assert set(YES) == set(NO) == set(TEXT_LANGUAGES)


def test_a_word_inside_another_is_not_an_answer() -> None:
    assert answer_of("I know the way", "en") is None  # "no" inside "know"
    assert answer_of("Nonetheless", "en") is None


async def test_the_first_words_settle_the_question() -> None:
    question = ConsentQuestion("en", "1")
    question.heard("   ")  # nothing said: still open
    assert question.open
    question.heard("Yes please")
    question.heard("No")  # too late: the first answer stands
    assert await question.wait(1) == Consent("given", "speech")


async def test_unclear_words_leave_the_call_unrecorded() -> None:
    question = ConsentQuestion("en", "1")
    question.heard("Can I book an appointment?")
    consent = await question.wait(1)
    assert consent == Consent("unclear", "speech")
    assert not consent.recorded


async def test_the_consent_key_agrees_and_another_key_does_not() -> None:
    question = ConsentQuestion("en", "#")
    question.pressed("1")
    assert question.open
    question.pressed("#")
    consent = await question.wait(1)
    assert consent == Consent("given", "dtmf")
    assert consent.recorded


async def test_silence_is_no_answer_and_no_recording() -> None:
    question = ConsentQuestion("en", "1")
    start = asyncio.get_running_loop().time()
    consent = await question.wait(0.2)
    assert consent == Consent("no_answer")
    assert not consent.recorded
    assert asyncio.get_running_loop().time() - start >= 0.2
    question.heard("yes")  # after the timeout: nothing changes
    assert await question.wait(0.1) == Consent("no_answer")


def test_a_notice_is_recorded_without_a_question() -> None:
    assert Consent("notice").recorded
