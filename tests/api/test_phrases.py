"""What the agent says by itself: one table of built-in phrases, complete in every language it
has, chosen by spec.language's primary subtag, under the spec's own phrases; a language without
built-in phrases sets them all."""

from __future__ import annotations

import copy
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import yaml
from kubevox_api import BUILT_IN_PHRASES, Phrases, ResolvedPhrases, VoiceAgent, phrases_for
from kubevox_api.crd import VOICE_AGENT, crd
from kubevox_api.languages import primary_language
from kubevox_api.phrases import PHRASES_RULE, has_built_in_phrases
from pydantic import ValidationError

from tests.support.cases import CLOUD_SPEECH
from tests.support.cases import VOICE_AGENT as AGENT_DOC

LANGUAGES = ["en", "fr", "es", "de", "ar"]
"""The languages issue #18 asks for, at least."""
FIELDS = [f.name for f in fields(ResolvedPhrases)]


def test_the_spec_s_phrases_and_the_resolved_ones_have_the_same_fields() -> None:
    assert set(Phrases.model_fields) == set(FIELDS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_built_in_language_is_complete(language: str) -> None:
    phrases = BUILT_IN_PHRASES[language]
    for name, text in asdict(phrases).items():
        assert text, (language, name)
        assert text.strip() == text, (language, name)
        assert text[-1] in ".?!؟", (language, name, "a spoken sentence ends like one")
    # Within the schema's bounds, as a phrase written in a spec would have to be.
    Phrases(**asdict(phrases))


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_built_in_phrases_are_translated(language: str) -> None:
    english = BUILT_IN_PHRASES["en"]
    for name, text in asdict(BUILT_IN_PHRASES[language]).items():
        assert text != getattr(english, name), (language, name)
    if language == "ar":  # in Arabic script, with Arabic punctuation
        assert all(
            "\u0600" <= c <= "\u06ff" or not c.isalpha()
            for c in "".join(asdict(BUILT_IN_PHRASES["ar"]).values())
        )
        assert BUILT_IN_PHRASES["ar"].silence_prompt.endswith("؟")


@pytest.mark.parametrize(
    ("tag", "primary"),
    [("fr-CA", "fr"), ("es-419", "es"), ("de-AT", "de"), ("ar-EG", "ar"), ("en", "en")],
)
def test_a_region_subtag_uses_its_language(tag: str, primary: str) -> None:
    assert primary_language(tag) == primary
    assert phrases_for(tag) == BUILT_IN_PHRASES[primary]


def test_the_spec_s_phrase_wins_and_the_others_stay_built_in() -> None:
    mine = Phrases(apology="Un instant, je reprends.", guard_refusal="Je ne sais pas.")
    phrases = phrases_for("fr-FR", mine)
    assert phrases.apology == "Un instant, je reprends."
    assert phrases.guard_refusal == "Je ne sais pas."
    assert phrases.time_limit_goodbye == BUILT_IN_PHRASES["fr"].time_limit_goodbye
    assert phrases_for("fr-FR", Phrases()) == BUILT_IN_PHRASES["fr"]


def test_a_language_without_built_in_phrases_falls_back_to_english() -> None:
    assert not has_built_in_phrases("it-IT")
    assert phrases_for("it-IT") == BUILT_IN_PHRASES["en"]
    every = Phrases(**{name: f"{name} in Italian." for name in FIELDS})
    assert asdict(phrases_for("it", every)) == {name: f"{name} in Italian." for name in FIELDS}


def _agent(**spec: object) -> VoiceAgent:
    doc = copy.deepcopy(AGENT_DOC)
    doc["spec"].update(CLOUD_SPEECH, **spec)
    return VoiceAgent.model_validate(doc)


def test_a_spec_without_phrases_gets_its_language_s() -> None:
    agent = _agent(language="de-CH")
    assert agent.spec.phrases == Phrases()
    assert phrases_for(agent.spec.language, agent.spec.phrases) == BUILT_IN_PHRASES["de"]


def test_a_language_without_built_in_phrases_must_set_them_all() -> None:
    with pytest.raises(ValidationError, match="language has no built-in phrases"):
        _agent(language="it")
    with pytest.raises(ValidationError, match="set every phrase"):
        _agent(language="it", phrases={"apology": "Mi scusi."})
    every = {f.alias: f"{name} in Italian." for name, f in Phrases.model_fields.items()}
    agent = _agent(language="it", phrases=every)
    assert phrases_for(agent.spec.language, agent.spec.phrases).silence_prompt == (
        "silence_prompt in Italian."
    )


def test_the_admission_rule_names_the_built_in_languages_and_every_phrase() -> None:
    for language in BUILT_IN_PHRASES:
        assert f"'{language}'" in PHRASES_RULE.cel
        assert language in PHRASES_RULE.message
    for f in Phrases.model_fields.values():
        assert f"has(self.phrases.{f.alias})" in PHRASES_RULE.cel
        assert str(f.alias) in PHRASES_RULE.message


def test_kubectl_explain_shows_the_languages_and_each_english_phrase() -> None:
    spec = crd(VOICE_AGENT)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    phrases = spec["spec"]["properties"]["phrases"]
    for language in BUILT_IN_PHRASES:
        assert (
            f" {language}," in phrases["description"] or f" {language};" in phrases["description"]
        )
    english = BUILT_IN_PHRASES["en"]
    for name, f in Phrases.model_fields.items():
        prop = phrases["properties"][f.alias]
        assert getattr(english, name) in " ".join(prop["description"].split()), name
        assert prop["maxLength"] == 512
        assert prop["minLength"] == 1
    assert "refusal" not in spec["spec"]["properties"]["groundingGuard"]["properties"]


def test_the_readme_s_example_of_a_language_without_built_in_phrases_is_valid() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = next(b for b in readme.split("```yaml\n")[1:] if "language: it-IT" in b)
    spec = yaml.safe_load(block.split("```", 1)[0])["spec"]
    agent = _agent(**spec)
    assert phrases_for(agent.spec.language, agent.spec.phrases).silence_prompt == (
        "È ancora in linea?"
    )
