"""The runtime speaks its own sentences from the agent's phrases (spec.phrases over the built-in
ones of spec.language), never from a literal of its own: a French agent apologises, says goodbye
and refuses in French. Pure: the agent is built, no session runs."""

from __future__ import annotations

import ast
from dataclasses import asdict
from pathlib import Path

import pytest
from kubevox_api import BUILT_IN_PHRASES, phrases_for
from kubevox_api.phrases import PHRASE_KEYS

from agent_runtime.agent import KubevoxAgent, guard_for, phrases_of
from agent_runtime.callrecord import CallRecord
from agent_runtime.controls import TextControls
from agent_runtime.knowledge import Retriever
from agent_runtime.knowledge_hook import build_grounding
from agent_runtime.text import split_sentences
from tests.support.calls import CLINIC_KB as KB
from tests.support.calls import FRENCH_SPEC
from tests.support.cases import CLOUD_SPEECH
from tests.support.runtime import make_config

RUNTIME = Path(__file__).resolve().parents[2] / "agent_runtime"
SPEAKING = {"say", "hang_up"}
"""The calls through which the agent speaks a text of its own: livekit's session.say and the
agent's hang_up (a goodbye, then the end of the call)."""


def _agent(spec: dict[str, object]) -> KubevoxAgent:
    config = make_config(spec)
    record = CallRecord(call_id="c", room="r", agent=config.name, namespace=config.namespace)
    return KubevoxAgent(config, record=record, controls=TextControls())


def test_a_french_agent_speaks_french() -> None:
    agent = _agent(FRENCH_SPEC)
    french = BUILT_IN_PHRASES["fr"]
    assert agent.phrases == french
    assert agent.phrases.apology.startswith("Veuillez m'excuser")
    assert agent.phrases.time_limit_goodbye.endswith("au revoir.")
    assert agent.phrases.silence_prompt == "Êtes-vous toujours en ligne ?"
    enforced = make_config(
        {**FRENCH_SPEC, "groundingGuard": {"mode": "enforce"}}, knowledgeBases=KB
    )
    guard = guard_for(enforced)
    assert guard is not None
    assert guard.refusal == french.guard_refusal
    assert guard.language == "fr"  # it compares French words (agent_runtime.text)


@pytest.mark.parametrize("language", sorted(BUILT_IN_PHRASES))
def test_each_language_s_agent_speaks_its_phrases(language: str) -> None:
    spec = {"language": language, **CLOUD_SPEECH}  # the offline voices speak English only
    assert phrases_of(make_config(spec)) == phrases_for(language) == BUILT_IN_PHRASES[language]


def test_the_spec_s_phrases_win() -> None:
    agent = _agent(
        {**FRENCH_SPEC, "phrases": {"timeLimitGoodbye": "Merci, c'est terminé. Au revoir."}}
    )
    assert agent.phrases.time_limit_goodbye == "Merci, c'est terminé. Au revoir."
    assert agent.phrases.apology == BUILT_IN_PHRASES["fr"].apology


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(RUNTIME.rglob("*.py"))]


def _module_constants(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _written_in_the_runtime(node: ast.expr | None, constants: set[str]) -> bool:
    """A string literal, an f-string, or a module's constant (``APOLOGY = "I'm sorry…"``)."""
    return (
        isinstance(node, ast.JoinedStr)
        or (isinstance(node, ast.Constant) and isinstance(node.value, str))
        or (isinstance(node, ast.Name) and node.id in constants)
    )


def test_the_runtime_speaks_no_text_of_its_own() -> None:
    """Whatever the agent says by itself goes through session.say or hang_up, or is yielded by
    llm_node in place of the model's answer: each takes the agent's phrases, the spec's greeting
    or the model's text, never a string or constant written in the runtime."""
    found = []
    for path, tree in _sources():
        constants = _module_constants(tree)
        for node in ast.walk(tree):
            said: list[ast.expr | None] = []
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in SPEAKING:
                    said = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "text")]
            elif isinstance(node, ast.Yield | ast.YieldFrom):
                said = [node.value]
            found += [
                f"{path.name}:{n.lineno}" for n in said if _written_in_the_runtime(n, constants)
            ]
    assert found == []


def test_the_agent_speaks_its_phrases() -> None:
    """Every phrase is spoken somewhere, from the agent's phrases (``self.phrases.<name>``), or
    is the guard's refusal, which the agent builds from its phrases (``guard_for``)."""
    tree = ast.parse((RUNTIME / "agent.py").read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "phrases"
    }
    used |= {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", "") == "phrases_of"
    }
    assert used == set(asdict(BUILT_IN_PHRASES["en"]))


def test_no_built_in_phrase_is_written_in_the_runtime() -> None:
    """The sentences live in kubevox_api.phrases alone: none of them (in any language) is also
    written, whole or in part, in a string of the runtime."""
    phrases = [text for p in BUILT_IN_PHRASES.values() for text in asdict(p).values()]
    # Their sentences, too: "Are you still there?" inside a longer text counts.
    sentences = {s for text in phrases for s in [text, *split_sentences(text)]}
    written = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                written += [
                    f"{path.name}:{node.lineno}: {s!r}" for s in sentences if s in node.value
                ]
    assert written == []


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        (FRENCH_SPEC, "fr"),
        ({**FRENCH_SPEC, "stt": {**FRENCH_SPEC["stt"], "language": "de-DE"}}, "de"),  # type: ignore[dict-item]
        ({**FRENCH_SPEC, "language": "it", "phrases": dict.fromkeys(PHRASE_KEYS, "Ciao.")}, None),
        ({}, "en"),
    ],
)
async def test_an_agents_retrievers_search_in_the_language_its_callers_speak(
    spec: dict[str, object], hint: str | None
) -> None:
    """A question whose words do not tell its language is searched in the one the agent's
    callers speak (its STT's, else its own), when kubevox reads that language."""
    config = make_config(spec, knowledgeBases=KB)
    grounding = build_grounding(config, env={"KUBEVOX_KB_0_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert grounding is not None
    retriever = grounding._sources[0].retriever
    assert isinstance(retriever, Retriever)
    assert retriever.language == hint
    await retriever.aclose()
