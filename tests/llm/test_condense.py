"""Condensing retrieved passages for the local model: the sentences that answer, in few tokens."""

from __future__ import annotations

from livekit.agents import llm

from agent_runtime.grounding import with_context
from agent_runtime.plugins.condense import condense
from agent_runtime.reference_data import KNOWLEDGE_PASSAGES, KNOWLEDGE_QUESTION
from agent_runtime.text import estimate_tokens
from tests.support.knowledge_stub import Chunk

HOURS = (
    "Riverside Family Clinic: visiting us > Opening hours\n"
    "The clinic is open Monday to Friday from 8:00 am to 6:30 pm. On Saturdays we open at "
    "9:00 am and close at 1:00 pm. The clinic is closed on Sundays and on public holidays."
)
PARKING = (
    "Riverside Family Clinic: visiting us > Parking\n"
    "Patients park for free in the underground garage for up to two hours. The entrance is on "
    "Elm Street."
)


def test_keeps_the_sentence_that_matches_within_a_small_budget() -> None:
    kept = condense("Are you closed on Sundays?", [HOURS, PARKING], budget_tokens=20)
    assert kept == ["The clinic is closed on Sundays and on public holidays."]


def test_never_exceeds_the_budget_and_keeps_the_passages_order() -> None:
    kept = condense("When do you open on Saturday?", [PARKING, HOURS], budget_tokens=40)
    assert sum(estimate_tokens(s) for s in kept) <= 40
    assert "On Saturdays we open at 9:00 am and close at 1:00 pm." in kept
    assert len(kept) >= 2
    # Order of the documents, not of the scores: the model reads them as they were written.
    order = [(PARKING + HOURS).index(s) for s in kept]
    assert order == sorted(order)


def test_a_heading_says_what_its_sentences_are_about() -> None:
    # "parking" is in no sentence of the parking section, only in its heading.
    kept = condense("Is parking free?", [HOURS, PARKING], budget_tokens=20)
    assert kept == ["Patients park for free in the underground garage for up to two hours."]


def test_a_rare_question_word_outweighs_a_common_one() -> None:
    passages = [
        "The clinic is open on weekdays. The clinic is open late on Thursdays. "
        "The clinic is open for flu shots in autumn."
    ]
    kept = condense("Is the clinic open on Thursday?", passages, budget_tokens=12)
    assert kept == ["The clinic is open late on Thursdays."]


def test_without_a_shared_word_the_top_passage_leads() -> None:
    kept = condense("Where can I leave my car?", [PARKING, HOURS], budget_tokens=20)
    assert kept == ["Patients park for free in the underground garage for up to two hours."]


def test_nothing_to_condense() -> None:
    assert condense("Anything?", [], budget_tokens=50) == []
    assert condense("Anything?", [HOURS], budget_tokens=0) == []


def test_context_message_carries_the_passages_for_the_provider() -> None:
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content="Are you open on Sunday?")
    grounded = with_context(ctx, [Chunk(HOURS), Chunk(PARKING)])
    assert len(grounded.items) == 1, "the passages join the caller's message"
    message = grounded.items[-1]
    assert message.type == "message"
    assert message.role == "user"
    # Providers that read only the content (openai) get the passages fenced, then the words.
    text = message.text_content or ""
    assert HOURS in text
    assert PARKING in text
    assert text.index("<reference-data-") < text.index(HOURS) < text.index("</reference-data-")
    assert text.endswith("The caller said: Are you open on Sunday?")
    assert message.extra[KNOWLEDGE_PASSAGES] == [HOURS, PARKING]
    assert message.extra[KNOWLEDGE_QUESTION] == "Are you open on Sunday?"
    assert ctx.items[0].text_content == "Are you open on Sunday?", "history is not modified"
