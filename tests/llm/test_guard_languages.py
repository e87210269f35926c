"""The grounding guard and condensing in the agent's language: its stop words and stems decide
what a sentence states, so a French answer is checked against French passages as an English one
is against English passages."""

from __future__ import annotations

from agent_runtime.grounding_guard import GroundingGuard, best_sentence
from agent_runtime.plugins.condense import condense

FR_PASSAGES = [
    "# Horaires de la pharmacie\nLa pharmacie de la clinique est ouverte en semaine de 8 h 30 à "
    "18 h et le samedi de 9 h à 12 h 30. En dehors de ces horaires, la pharmacie de garde du "
    "quartier est affichée sur la porte.",
    "# Livraison à domicile\nLes patients de plus de 70 ans peuvent se faire livrer leurs "
    "médicaments à domicile. Les livraisons ont lieu le mardi et le vendredi après-midi.",
]
FR_QUESTION = "Quand la pharmacie est-elle ouverte le samedi ?"
FR_REFUSAL = "Je regrette, je ne dispose pas de cette information."


def test_a_french_answer_in_other_words_forms_is_supported() -> None:
    guard = GroundingGuard(language="fr", refusal=FR_REFUSAL)
    # "les samedis", "ouvertes": other forms of the passage's words, the same stems.
    answer = "Oui, la pharmacie est ouverte les samedis de 9 h à 12 h 30."
    assert guard.review(answer, FR_QUESTION, FR_PASSAGES) == answer


def test_an_invented_french_time_is_replaced_by_the_french_passage() -> None:
    guard = GroundingGuard(language="fr", refusal=FR_REFUSAL)
    said = guard.review("La pharmacie ouvre le samedi à 10 h.", FR_QUESTION, FR_PASSAGES)
    assert "10 h" not in said
    assert said.startswith("La pharmacie de la clinique est ouverte en semaine")
    assert best_sentence(FR_QUESTION, FR_PASSAGES, "fr") == said


def test_an_invented_french_service_is_refused_in_french() -> None:
    guard = GroundingGuard(language="fr", fallback="refuse", refusal=FR_REFUSAL)
    said = guard.review(
        "Oui, nous posons des implants dentaires gratuits.",
        "Faites-vous des implants dentaires ?",
        FR_PASSAGES,
    )
    assert said == FR_REFUSAL


def test_an_honest_french_refusal_passes_only_with_french_stop_words() -> None:
    answer = "Je suis désolé, je ne sais pas."
    assert GroundingGuard(language="fr").review(answer, "Implants ?", FR_PASSAGES) == answer
    # With English tables "désolé" and "sais" would be facts nothing supports.
    english = GroundingGuard(fallback="refuse", refusal=FR_REFUSAL)
    assert english.review(answer, "Implants ?", FR_PASSAGES) == FR_REFUSAL


def test_german_arabic_and_spanish_answers_are_checked_in_their_language() -> None:
    de = ["Die Apotheke der Praxis ist samstags von 9 bis 12:30 Uhr geöffnet."]
    guard = GroundingGuard(language="de")
    ok = "Am Samstag hat die Apotheke von 9 bis 12:30 Uhr geöffnet."
    assert guard.review(ok, "Wann hat die Apotheke am Samstag offen?", de) == ok
    assert "13" not in guard.review("Die Apotheke schließt samstags um 13 Uhr.", "Samstag?", de)

    ar = ["الصيدلية مفتوحة يوم السبت من 9:00 إلى 12:30."]
    guard = GroundingGuard(language="ar")
    ok = "نعم، والصيدلية مفتوحة يوم السبت من 9:00 إلى 12:30."
    assert guard.review(ok, "متى تفتح الصيدلية يوم السبت؟", ar) == ok
    assert "10:00" not in guard.review("الصيدلية مفتوحة يوم السبت من 10:00.", "السبت؟", ar)

    es = ["La farmacia abre los sábados de 9:00 a 12:30."]
    guard = GroundingGuard(language="es")
    ok = "Sí, la farmacia abre el sábado de 9:00 a 12:30."
    assert guard.review(ok, "¿Cuándo abre la farmacia el sábado?", es) == ok


def test_condensing_picks_the_french_sentence_that_answers() -> None:
    kept = condense("Le parking est-il gratuit ?", [*FR_PASSAGES, PARKING_FR], 25, "fr")
    assert kept == ["Le stationnement est gratuit pendant deux heures dans le parking souterrain."]
    kept = condense("Quels jours livrez-vous ?", FR_PASSAGES, 20, "fr")
    assert kept == ["Les livraisons ont lieu le mardi et le vendredi après-midi."]


PARKING_FR = (
    "# Stationnement\nLe stationnement est gratuit pendant deux heures dans le parking "
    "souterrain. Prenez un ticket à la barrière."
)
