"""The grounding guard on real answers a small model gives: supported sentences pass, invented
facts are replaced, honest refusals pass."""

from __future__ import annotations

from collections.abc import AsyncIterator

from agent_runtime.grounding_guard import GroundingGuard, best_sentence
from agent_runtime.text import key_terms

PASSAGES = [
    "# Pharmacy hours\nThe in-house pharmacy is open on weekdays from 8:30 am to 6:00 pm and on "
    "Saturdays from 9:00 am to 12:30 pm. Outside these hours, the duty pharmacy of the district "
    "is listed on the door.",
    "# Home delivery\nPatients over 70 can have their medicines delivered at home. Deliveries "
    "take place on Tuesdays and Fridays in the afternoon.",
]
QUESTION = "When is the pharmacy open on Saturday?"


def test_key_terms_drop_function_words_and_fold_plurals() -> None:
    assert key_terms("The pharmacy opens on Saturdays at 9:00 am.") == {
        "pharmacy",
        "open",
        "saturday",
        "9:00",
    }


def test_supported_answer_is_kept() -> None:
    guard = GroundingGuard()
    answer = "The pharmacy is open on Saturdays from 9:00 am to 12:30 pm."
    assert guard.review(answer, QUESTION, PASSAGES) == answer


def test_invented_time_is_replaced_by_the_best_passage_sentence() -> None:
    guard = GroundingGuard()
    said = guard.review("The pharmacy opens on Saturdays at 10:00 am.", QUESTION, PASSAGES)
    assert "10:00" not in said
    assert said.startswith("The in-house pharmacy is open on weekdays")


def test_invented_service_is_refused_when_nothing_matches() -> None:
    guard = GroundingGuard(fallback="refuse", refusal="I don't have that information.")
    said = guard.review(
        "Yes, we offer free dental implants for everyone.", "Do you do dental implants?", PASSAGES
    )
    assert said == "I don't have that information."


def test_quote_falls_back_to_refusal_when_no_sentence_shares_a_word() -> None:
    guard = GroundingGuard(fallback="quote", refusal="Sorry, I can't say.")
    said = guard.review("We do dental implants.", "dental implants?", PASSAGES)
    assert said == "Sorry, I can't say."


def test_honest_refusal_passes() -> None:
    guard = GroundingGuard()
    answer = "I don't know whether the clinic offers dental implants."
    assert guard.review(answer, "Do you do implants?", PASSAGES) == answer


def test_supported_sentences_before_an_invented_one_are_kept() -> None:
    guard = GroundingGuard()
    said = guard.review(
        "Deliveries take place on Tuesdays and Fridays. The driver also brings groceries.",
        "When do you deliver?",
        PASSAGES,
    )
    assert said.startswith("Deliveries take place on Tuesdays and Fridays.")
    assert "groceries" not in said


def test_best_sentence_skips_headings() -> None:
    assert best_sentence("pharmacy hours", PASSAGES) is not None
    assert not best_sentence("pharmacy hours", PASSAGES).startswith("#")  # type: ignore[union-attr]


async def _deltas(text: str, size: int = 3) -> AsyncIterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


async def test_streaming_guard_releases_sentence_by_sentence() -> None:
    guard = GroundingGuard()
    answer = "Deliveries take place on Tuesdays and Fridays. They are in the afternoon."
    out = [piece async for piece in guard.guard(_deltas(answer), "When?", PASSAGES)]
    assert out == ["Deliveries take place on Tuesdays and Fridays.", " They are in the afternoon."]


async def test_streaming_guard_stops_at_the_first_unsupported_sentence() -> None:
    guard = GroundingGuard(fallback="refuse", refusal="I'm not sure about that.")
    answer = "Deliveries are on Tuesdays. Deliveries cost 15 euros. More text follows here."
    out = [piece async for piece in guard.guard(_deltas(answer), "Delivery cost?", PASSAGES)]
    assert out == ["Deliveries are on Tuesdays.", " I'm not sure about that."]


def test_facts_spliced_from_two_true_sentences_are_not_supported() -> None:
    # "clinic" and "opens on Saturdays at 9" are each in the passages, never together.
    passages = [
        "The clinic is open Monday to Friday from 8 am to 6 pm.\n"
        "The pharmacy opens on Saturdays at 9 am and closes at noon."
    ]
    guard = GroundingGuard(fallback="refuse", refusal="I don't know.")
    assert (
        guard.review(
            "The clinic opens on Saturdays at 9 am and closes at noon.",
            "When does the clinic open?",
            passages,
        )
        == "I don't know."
    )


def test_a_repeated_sentence_is_said_once() -> None:
    guard = GroundingGuard()
    once = "Deliveries take place on Tuesdays and Fridays."
    assert guard.review(f"{once} {once}", "When?", PASSAGES) == once


def test_copied_context_markup_is_not_an_answer() -> None:
    guard = GroundingGuard(fallback="quote")
    answer = "[1] (clinic) Northwind Clinic facts > Parking\nDeliveries take place on Tuesdays."
    said = guard.review(answer, "When are deliveries?", PASSAGES)
    assert "[1]" not in said
    assert said.startswith("Deliveries take place on Tuesdays and Fridays")


def test_numbers_must_keep_their_places() -> None:
    passages = [
        "The clinic is open Monday to Friday from 8 am to 6 pm, and on Saturdays from 9 am to 1 pm."
    ]
    guard = GroundingGuard(fallback="refuse", refusal="I don't know.")
    wrong = "The clinic is open Monday to Friday from 8 am to 1 pm, and on Saturdays from 9 am."
    assert guard.review(wrong, "Hours?", passages) == "I don't know."
    right = "The clinic is open Monday to Friday from 8 am to 6 pm."
    assert guard.review(right, "Hours?", passages) == right


def test_a_quote_must_answer_at_least_half_the_question() -> None:
    passages = ["The psychologist offers short-term counselling of up to eight sessions."]
    guard = GroundingGuard(fallback="quote", refusal="I don't have that information.")
    # Shares only "offer" with the question: quoting it would answer nothing.
    said = guard.review("Yes, we offer implants.", "Do you offer dental implants?", passages)
    assert said == "I don't have that information."


def test_breadcrumbs_are_evidence_context_never_a_quote() -> None:
    passages = [
        "Riverside Family Clinic: visiting us > Accessibility\n"
        "The building has step-free access from the street."
    ]
    guard = GroundingGuard(fallback="quote")
    said = guard.review("There is a ramp.", "Is there step-free access at the clinic?", passages)
    assert said == "The building has step-free access from the street."


def test_a_sentence_wrapped_over_lines_is_one_fact() -> None:
    # As Markdown authors write, and as a passage stores it: its heading context first.
    wrapped = (
        "Opening hours\nNorthwind Clinic is open Monday to Friday from 8 am to 6 pm, and on "
        "Saturdays from\n9 am to 1 pm. The clinic is closed on Sundays."
    )
    whole = (
        "Northwind Clinic is open Monday to Friday from 8 am to 6 pm, and on Saturdays from "
        "9 am to 1 pm."
    )
    assert best_sentence("Are you open on Saturdays?", [wrapped]) == whole
    # The whole sentence is evidence: "9 am to 1 pm" is said of Saturdays.
    guard = GroundingGuard()
    answer = "On Saturdays the clinic is open from 9 am to 1 pm."
    assert guard.review(answer, "Are you open on Saturdays?", [wrapped]) == answer


PARKING = ["# Parking\nFree parking is available behind the building, entrance on Elm Street."]


def test_a_negative_statement_needs_a_negative_passage() -> None:
    """SmolLM2 answered "Is there parking?" with "No, there is not parking." on the offline
    sample: every word it states is in the passage, the opposite of what the passage says."""
    guard = GroundingGuard()
    said = guard.review("No, there is not parking.", "Is there parking?", PARKING)
    assert said == PARKING[0].split("\n")[1]
    walk_ins = ["Walk-in patients are not accepted on Saturdays."]
    assert guard.review("Walk-in patients are accepted on Saturdays.", "Walk-ins?", walk_ins) != (
        "Walk-in patients are accepted on Saturdays."
    )
    kept = "Walk-in patients aren't accepted on Saturdays."
    assert guard.review(kept, "Walk-ins?", walk_ins) == kept


def test_a_yes_or_no_answering_the_question_is_not_the_statement() -> None:
    guard = GroundingGuard()
    closed = ["The clinic is closed on Sundays and public holidays."]
    answer = "No, the clinic is closed on Sundays."
    assert guard.review(answer, "Are you open on Sunday?", closed) == answer
    assert guard.review("Yes, free parking is available.", "Parking?", PARKING) == (
        "Yes, free parking is available."
    )


def test_a_negation_counts_in_the_agents_language() -> None:
    guard = GroundingGuard(language="fr")
    passages = ["Un parking gratuit est disponible derrière le bâtiment, rue des Ormes."]
    said = guard.review("Le parking gratuit n'est pas disponible.", "Un parking ?", passages)
    assert said == passages[0]
    assert guard.review("Le parking gratuit est disponible.", "Un parking ?", passages) == (
        "Le parking gratuit est disponible."
    )
