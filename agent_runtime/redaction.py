"""Masking personal data in text that leaves the worker (the call record's transcript): phone
numbers, email addresses and payment card numbers, as written digits and addresses, and people's
names after an introduction or a title (:mod:`.redaction_names`). Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from .redaction_names import mask_names

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")
"""Digits with the separators people and speech recognisers write between them."""
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")
_TIME_RANGE = re.compile(r"^\d{1,2}([:.]\d{2})?\s*-\s*\d{1,2}([:.]\d{2})?$")
CARD_DIGITS = range(13, 20)
PHONE_DIGITS = range(7, 16)  # E.164 allows 15; local numbers have 7 or more


def luhn(digits: str) -> bool:
    """Whether ``digits`` pass the Luhn check every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _number(kinds: Collection[str]) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        digits = re.sub(r"\D", "", text)
        if _DATE.match(text.strip()) or _TIME_RANGE.match(text.strip()):
            return text  # a date or an opening time, not a person's data
        if "cardNumbers" in kinds and len(digits) in CARD_DIGITS and luhn(digits):
            return "[card]"
        if "phoneNumbers" in kinds and len(digits) in PHONE_DIGITS:
            return "[phone]"
        return text

    return replace


def redact(text: str, kinds: Collection[str]) -> str:
    """``text`` with the ``kinds`` of personal data (``phoneNumbers``, ``emails``,
    ``cardNumbers``, ``names``: VoiceAgent ``spec.redact``) masked."""
    if "emails" in kinds:
        text = EMAIL.sub("[email]", text)
    if "phoneNumbers" in kinds or "cardNumbers" in kinds:
        text = _DIGIT_RUN.sub(_number(kinds), text)
    if "names" in kinds:  # last: "I'm Jane.Doe@example.com" is an address, masked whole
        text = mask_names(text)
    return text


def mask_phone_number(number: str) -> str:
    """A phone number with all but its last 4 digits masked: enough to tell two callers apart."""
    digits = re.sub(r"\D", "", number)
    return ("+" if number.startswith("+") else "") + "*" * (len(digits) - 4) + digits[-4:]
