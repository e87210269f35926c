"""What the agent says by itself: the sentences no language model writes, in the call's language.

The apology when every language model failed, the goodbyes at the time limit and on silence,
the question to a silent caller, the transfer notice and the grounding guard's refusal are spoken
as written. Each comes from ``spec.phrases`` when set there, else from :data:`BUILT_IN_PHRASES`,
the one table of built-in sentences, chosen by the primary subtag of ``spec.language`` (``fr``
for ``fr-CA``). A language with no built-in sentences must set them all: :data:`PHRASES_RULE`
refuses it otherwise, at admission and wherever the models parse, so that no caller hears a
sentence in a language other than the call's without the spec saying so.

What the language model is told (its instructions, tool results such as "say a short goodbye")
is not here: it is written for the model, which replies in ``spec.language``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Annotated, Any

from pydantic import StringConstraints

from .base import KubeModel, Rule
from .languages import primary_language

PHRASE_MAX = 512
Phrase = Annotated[str, StringConstraints(min_length=1, max_length=PHRASE_MAX)]
"""One or two sentences the agent speaks as written (plain text: the voice reads it aloud)."""


class Phrases(KubeModel):
    """What the agent says by itself, outside the language model's answers. A phrase left out is
    the built-in one of ``language`` (built in: ar, de, en, es, fr; ``fr-CA`` uses ``fr``); a
    language without built-in phrases must set every one."""

    apology: Phrase | None = None
    """Said when every language model failed to answer a turn (in English: "I'm sorry, I'm
    having trouble answering right now. Could you please try again?")."""
    time_limit_goodbye: Phrase | None = None
    """Said before the call is ended at ``maxCallDurationSeconds`` (in English: "I'm sorry,
    we've reached the time limit for this call. Thank you for calling, goodbye.")."""
    silence_prompt: Phrase | None = None
    """Asked once when the caller has been silent for ``silenceTimeoutSeconds`` (in English:
    "Are you still there?")."""
    silence_goodbye: Phrase | None = None
    """Said before the call is ended when the caller stays silent after ``silencePrompt`` (in
    English: "I haven't heard from you, so I'll end the call now. Goodbye.")."""
    transfer_notice: Phrase | None = None
    """Said before a phone caller is transferred by ``tools.transfer`` (in English: "Please
    hold while I transfer you to a colleague.")."""
    guard_refusal: Phrase | None = None
    """Said by ``groundingGuard`` instead of an answer the knowledge bases do not support, when
    nothing in them answers the question (in English: "I'm sorry, I don't have that
    information.")."""


@dataclass(frozen=True)
class ResolvedPhrases:
    """Every phrase of one agent: its ``spec.phrases`` over the built-in ones of its language.
    The fields are those of :class:`Phrases`, each set."""

    apology: str
    time_limit_goodbye: str
    silence_prompt: str
    silence_goodbye: str
    transfer_notice: str
    guard_refusal: str


FALLBACK_LANGUAGE = "en"
"""The built-in phrases :func:`phrases_for` uses for a language that has none."""

BUILT_IN_PHRASES: dict[str, ResolvedPhrases] = {
    "en": ResolvedPhrases(
        apology="I'm sorry, I'm having trouble answering right now. Could you please try again?",
        time_limit_goodbye=(
            "I'm sorry, we've reached the time limit for this call. Thank you for calling, goodbye."
        ),
        silence_prompt="Are you still there?",
        silence_goodbye="I haven't heard from you, so I'll end the call now. Goodbye.",
        transfer_notice="Please hold while I transfer you to a colleague.",
        guard_refusal="I'm sorry, I don't have that information.",
    ),
    "fr": ResolvedPhrases(
        apology=(
            "Veuillez m'excuser, je ne parviens pas à vous répondre pour le moment. "
            "Pourriez-vous réessayer, s'il vous plaît ?"
        ),
        time_limit_goodbye=(
            "Veuillez nous excuser, cet appel a atteint sa durée maximale. Merci de votre "
            "appel, au revoir."
        ),
        silence_prompt="Êtes-vous toujours en ligne ?",
        silence_goodbye=(
            "Je n'ai pas de réponse de votre part, je vais donc mettre fin à l'appel. Au revoir."
        ),
        transfer_notice="Ne quittez pas, je vous transfère à l'un de mes collègues.",
        guard_refusal="Je regrette, je ne dispose pas de cette information.",
    ),
    "es": ResolvedPhrases(
        apology=(
            "Disculpe, ahora mismo tengo problemas para responder. ¿Podría intentarlo de "
            "nuevo, por favor?"
        ),
        time_limit_goodbye=(
            "Lo sentimos, hemos llegado al tiempo máximo de esta llamada. Gracias por su "
            "llamada, adiós."
        ),
        silence_prompt="¿Sigue ahí?",
        silence_goodbye="No he recibido respuesta, así que voy a finalizar la llamada. Adiós.",
        transfer_notice="Por favor, espere un momento mientras le transfiero con un compañero.",
        guard_refusal="Lo siento, no dispongo de esa información.",
    ),
    "de": ResolvedPhrases(
        apology=(
            "Entschuldigen Sie bitte, ich habe gerade Schwierigkeiten, Ihnen zu antworten. "
            "Könnten Sie es bitte noch einmal versuchen?"
        ),
        time_limit_goodbye=(
            "Es tut mir leid, die maximale Gesprächsdauer ist erreicht. Vielen Dank für Ihren "
            "Anruf, auf Wiederhören."
        ),
        silence_prompt="Sind Sie noch da?",
        silence_goodbye=(
            "Ich habe nichts mehr von Ihnen gehört, daher beende ich jetzt das Gespräch. "
            "Auf Wiederhören."
        ),
        transfer_notice="Einen Moment bitte, ich verbinde Sie weiter.",
        guard_refusal="Es tut mir leid, dazu liegen mir keine Informationen vor.",
    ),
    # Modern Standard Arabic, unvocalised but for the shadda that fixes a verb's form; the
    # second person is left unmarked, so it addresses a man or a woman alike.
    "ar": ResolvedPhrases(
        apology="عذرًا، أواجه صعوبة في الإجابة حاليًا. هل يمكنك المحاولة مرة أخرى من فضلك؟",
        time_limit_goodbye=(
            "نأسف، لقد بلغت هذه المكالمة الحد الأقصى لمدتها. شكرًا لاتصالك، مع السلامة."
        ),
        silence_prompt="هل ما زلت على الخط؟",
        silence_goodbye="لم أسمع منك ردًا، لذا سأنهي المكالمة الآن. مع السلامة.",
        transfer_notice="يرجى الانتظار، سأحوّل مكالمتك إلى أحد زملائي.",
        guard_refusal="عذرًا، لا تتوفر لديّ هذه المعلومة.",
    ),
}
"""The built-in phrases, by primary language subtag: the only place the runtime's own sentences
are written."""


def has_built_in_phrases(language: str) -> bool:
    """Whether :data:`BUILT_IN_PHRASES` speaks ``language`` (by its primary subtag)."""
    return primary_language(language) in BUILT_IN_PHRASES


def phrases_for(language: str, overrides: Phrases | None = None) -> ResolvedPhrases:
    """The phrases an agent speaking ``language`` says: ``overrides`` (its ``spec.phrases``)
    where set, else the built-in ones of the language, else (a language without any; the API
    refuses such a spec unless it sets them all) the English ones."""
    base = BUILT_IN_PHRASES.get(primary_language(language), BUILT_IN_PHRASES[FALLBACK_LANGUAGE])
    if overrides is None:
        return base
    return replace(base, **overrides.model_dump(exclude_none=True))


PHRASE_KEYS = tuple(Phrases.model_fields[f.name].alias or f.name for f in fields(ResolvedPhrases))
"""The fields of ``spec.phrases``, as written in a manifest (``timeLimitGoodbye``)."""


def _all_set_or_built_in(spec: Any) -> bool:
    phrases: Phrases = spec.phrases
    return has_built_in_phrases(spec.language) or all(
        getattr(phrases, f.name) is not None for f in fields(ResolvedPhrases)
    )


PHRASES_RULE = Rule(
    cel=f"self.language.split('-')[0] in {sorted(BUILT_IN_PHRASES)!r} || "
    + " && ".join(f"has(self.phrases.{key})" for key in PHRASE_KEYS),
    message=f"language has no built-in phrases (built in: {', '.join(sorted(BUILT_IN_PHRASES))}):"
    f" set every phrase ({', '.join(PHRASE_KEYS)}), so that callers hear the call's language",
    check=_all_set_or_built_in,
    field_path=".phrases",
)
"""On VoiceAgentSpec: a language without built-in phrases sets them all (CEL and pydantic)."""
