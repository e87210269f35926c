"""Masking personal data in call records (agent_runtime/redaction.py): what is masked, and what
must not be (opening hours, dates, prices)."""

from __future__ import annotations

import pytest

from agent_runtime.callrecord import CallRecord
from agent_runtime.redaction import luhn, mask_phone_number, redact

ALL = ("phoneNumbers", "emails", "cardNumbers")


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
    text = "jane@example.com, +1 415 555 0199, 4111 1111 1111 1111"
    assert redact(text, ["emails"]) == "[email], +1 415 555 0199, 4111 1111 1111 1111"
    assert redact(text, ["cardNumbers"]) == "jane@example.com, +1 415 555 0199, [card]"
    assert redact(text, []) == text


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
