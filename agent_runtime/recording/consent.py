"""The caller's answer to the recording notice (``recording.consent: required``): a spoken yes
or no in the agent's language, or the consent key on a phone's keypad.

A refusal wins over a yes ("no, don't" is a no; so is "yes... no"), and anything that is neither
(an unclear answer, a question back, silence) leaves the call unrecorded: recording without a
clear yes is what the law forbids, not the reverse. The words are matched whole, without case
or accents, in the five languages kubevox has tables for.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from kubevox_api.languages import TextLanguage, text_language

Answer = Literal["yes", "no"]
ConsentResult = Literal["given", "refused", "unclear", "no_answer", "notice"]
"""``given`` (the caller agreed), ``refused``, ``unclear`` (they said something else),
``no_answer`` (silence until the timeout or the call's end), ``notice`` (consent was not asked:
``consent: notice``)."""
ConsentBy = Literal["speech", "dtmf"]

YES: dict[TextLanguage, tuple[str, ...]] = {
    "en": ("yes", "yeah", "yep", "sure", "ok", "okay", "i agree", "agreed", "that's fine",
           "that is fine", "go ahead", "of course", "alright", "all right", "fine"),
    "fr": ("oui", "ouais", "d'accord", "ok", "okay", "bien sur", "j'accepte", "ca me va",
           "pas de souci", "pas de probleme", "allez-y"),
    "es": ("si", "vale", "de acuerdo", "claro", "acepto", "ok", "okay", "por supuesto",
           "esta bien", "adelante"),
    "de": ("ja", "einverstanden", "okay", "ok", "gerne", "natürlich", "naturlich", "klar",
           "in ordnung", "passt"),
    "ar": ("نعم", "أجل", "اجل", "موافق", "أوافق", "اوافق", "حسنا", "طيب", "ماشي"),
}  # fmt: skip
NO: dict[TextLanguage, tuple[str, ...]] = {
    "en": ("no", "not", "nope", "don't", "do not", "rather not", "refuse", "i decline", "not okay",
           "not ok", "disagree", "stop"),
    "fr": ("non", "pas d'accord", "je refuse", "refuse", "surtout pas", "ne pas"),
    "es": ("no", "prefiero que no", "me niego", "rechazo"),
    "de": ("nein", "nicht einverstanden", "lieber nicht", "ablehnen", "lehne ab", "nicht"),
    "ar": ("لا", "أرفض", "ارفض", "غير موافق", "كلا"),
}  # fmt: skip


def _folded(text: str) -> str:
    """Lower case, accents off (not Arabic's letters), apostrophes as ASCII, spaces single."""
    text = text.lower().replace("\u2019", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c) or ord(c) >= 0x600)
    return " ".join(unicodedata.normalize("NFC", kept).split())


def _says(text: str, phrases: tuple[str, ...]) -> bool:
    for phrase in phrases:
        if re.search(rf"(?<![\w']){re.escape(_folded(phrase))}(?![\w'])", text):
            return True
    return False


def answer_of(text: str, language: str) -> Answer | None:
    """``yes``, ``no``, or None when the words are neither (or both, which is a no)."""
    lang = text_language(language)
    said = _folded(text)
    if _says(said, NO[lang]):
        return "no"
    if _says(said, YES[lang]):
        return "yes"
    return None


@dataclass(frozen=True)
class Consent:
    """How the question was settled."""

    result: ConsentResult
    by: ConsentBy | None = None

    @property
    def recorded(self) -> bool:
        return self.result in ("given", "notice")


class ConsentQuestion:
    """The notice's question, open until the caller's first answer (words or the key)."""

    def __init__(self, language: str, consent_key: str) -> None:
        self._language = language
        self._key = consent_key
        self._answer: asyncio.Future[Consent] = asyncio.get_running_loop().create_future()

    @property
    def open(self) -> bool:
        return not self._answer.done()

    def heard(self, text: str) -> None:
        """The caller's first words after the notice settle it, whatever they are."""
        if self.open and text.strip():
            said = answer_of(text, self._language)
            result: ConsentResult = (
                "given" if said == "yes" else "refused" if said == "no" else "unclear"
            )
            self._answer.set_result(Consent(result, "speech"))

    def pressed(self, digit: str) -> None:
        """A keypad key: the consent key agrees; another key is not an answer."""
        if self.open and digit == self._key:
            self._answer.set_result(Consent("given", "dtmf"))

    async def wait(self, seconds: float) -> Consent:
        """The answer, or ``no_answer`` after ``seconds``."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._answer), seconds)
        except TimeoutError:
            if self.open:
                self._answer.set_result(Consent("no_answer"))
            return self._answer.result()
