"""The pydantic models: samples parse, defaults apply, and every bad case is refused with the
field named (the same table the API server must refuse, see test_admission.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from kubevox_api import (
    AgentRuntimeConfig,
    KnowledgeBase,
    VoiceAgent,
    credential_env,
    default_agent_name,
    render_runtime_config,
    secret_refs,
)
from kubevox_api.knowledgebase import LOCAL_EMBEDDING_MODELS, stored_knowledge_base
from kubevox_api.languages import KNOWLEDGE_LANGUAGES
from pydantic import ValidationError

from tests.support.cases import BAD_CASES, KNOWLEDGE_BASE, VOICE_AGENT, BadCase
from tests.support.cases_analysis import ANALYSIS_CASES

SAMPLES = sorted((Path(__file__).parents[2] / "manifests" / "samples").glob("*.yaml"))
MODELS = {"VoiceAgent": VoiceAgent, "KnowledgeBase": KnowledgeBase}


def _parse(obj: dict) -> VoiceAgent | KnowledgeBase:  # type: ignore[type-arg]
    return MODELS[obj["kind"]].model_validate(obj)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_parse(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d["kind"] in MODELS]
    assert docs
    for doc in docs:
        assert _parse(doc).spec is not None


def test_defaults_fill_in() -> None:
    agent = VoiceAgent.model_validate(VOICE_AGENT)
    assert agent.spec.language == "en"
    assert agent.spec.drain_timeout_seconds == 3600
    assert agent.spec.scaling.min_replicas == 1
    assert agent.spec.scaling.autoscaler == "hpa"
    assert agent.spec.scaling.max_calls_per_pod >= agent.spec.scaling.target_calls_per_pod
    assert agent.spec.turn_detection.mode == "model"
    assert agent.spec.resources.requests.cpu is None  # sized by the operator (sizing.py)
    ns = agent.metadata.get("namespace") or "default"
    assert agent.effective_agent_name == f"{ns}.case"  # unique across namespaces


def test_default_agent_names_are_unique_stable_and_short() -> None:
    # The hyphen-joined form would name both of these "team-a-support".
    assert default_agent_name("team-a", "support") == "team-a.support"
    assert default_agent_name("team", "a-support") == "team.a-support"
    long_ns, long_name = "n" * 63, "support." + "x" * 200
    long = default_agent_name(long_ns, long_name)
    assert len(long) == 63
    assert long == default_agent_name(long_ns, long_name)  # stable
    assert long != default_agent_name(long_ns, long_name + "y")  # cut, yet still unique
    explicit = VoiceAgent.model_validate(
        {**VOICE_AGENT, "spec": {**VOICE_AGENT["spec"], "agentName": "front-desk"}}
    )
    assert explicit.effective_agent_name == "front-desk"


@pytest.mark.parametrize("case", [*BAD_CASES, *ANALYSIS_CASES], ids=lambda c: c.id)
def test_bad_input_is_refused_naming_the_field(case: BadCase) -> None:
    with pytest.raises(ValidationError) as err:
        _parse(case.manifest("case"))
    leaf = case.field.rsplit(".", 1)[-1].split("[")[0]
    assert leaf in str(err.value), str(err.value)


def test_runtime_config_round_trips_without_secrets() -> None:
    agent = VoiceAgent.model_validate(
        yaml.safe_load_all(
            (Path(__file__).parents[2] / "manifests/samples/support-agent.yaml").read_text()
        ).__next__()
    )
    kb_doc = list(
        yaml.safe_load_all(
            (Path(__file__).parents[2] / "manifests/samples/support-agent.yaml").read_text()
        )
    )[1]
    kb_doc["metadata"]["namespace"] = "clinic"
    kb = KnowledgeBase.model_validate(kb_doc)
    agent.metadata["namespace"] = "clinic"
    config = render_runtime_config(agent, {"support-docs": kb})
    text = config.model_dump_json(by_alias=True)
    assert AgentRuntimeConfig.model_validate_json(text) == config
    assert config.knowledge_bases[0].index_name == "kb_clinic_support-docs"
    assert config.knowledge_bases[0].redis_url_env == "KUBEVOX_KB_0_REDIS_URL"
    # Only references to Secrets, never a value: the config names keys, not contents.
    assert {r.name for r in secret_refs(agent.spec)} == {"livekit-credentials", "voice-providers"}
    assert credential_env("llm", 1) == "KUBEVOX_LLM_FALLBACK_1_API_KEY"


def test_knowledge_base_defaults() -> None:
    kb = KnowledgeBase.model_validate(KNOWLEDGE_BASE)
    assert kb.spec.chunking.size_tokens > kb.spec.chunking.overlap_tokens
    assert kb.spec.embedding.provider == "local"
    assert kb.index_name == "kb_default_case"
    # English, as every KnowledgeBase was before languages; a source inherits it.
    assert kb.spec.language == "en"
    assert kb.spec.sources[0].language is None
    assert "language" not in kb.spec.sources[0].to_k8s()


@pytest.mark.parametrize("language", KNOWLEDGE_LANGUAGES)
def test_every_knowledge_language_is_accepted_for_the_base_and_a_source(language: str) -> None:
    doc = copy.deepcopy(KNOWLEDGE_BASE)
    doc["spec"]["language"] = language
    doc["spec"]["sources"].append({"name": "other", "inline": "Autre.", "language": language})
    kb = KnowledgeBase.model_validate(doc)
    assert kb.spec.language == kb.spec.sources[1].language == language


@pytest.mark.parametrize("interval", ["1m", "60s", "0.5h1s", "6h"])
def test_refresh_interval_of_a_minute_or_more_is_accepted(interval: str) -> None:
    doc = copy.deepcopy(KNOWLEDGE_BASE)
    doc["spec"]["refreshInterval"] = interval
    assert KnowledgeBase.model_validate(doc).spec.refresh_interval == interval
    assert stored_knowledge_base(doc) == (KnowledgeBase.model_validate(doc), None)


def test_stored_knowledge_base_from_before_the_minimum_runs_every_minute() -> None:
    """An object the API server admitted before the one-minute minimum still parses in the
    operator, refreshed every minute, with a note for its Event; the body is left as it was."""
    doc = copy.deepcopy(KNOWLEDGE_BASE)
    doc["spec"]["refreshInterval"] = "10s"
    with pytest.raises(ValidationError, match="refreshInterval must be at least 1m"):
        KnowledgeBase.model_validate(doc)
    kb, note = stored_knowledge_base(doc)
    assert kb.spec.refresh_interval == "1m"
    assert note is not None
    assert "spec.refreshInterval 10s is below the minimum of 1m" in note
    assert doc["spec"]["refreshInterval"] == "10s"


@pytest.mark.parametrize("model", [None, *LOCAL_EMBEDDING_MODELS])
def test_local_embedding_accepts_its_models(model: str | None) -> None:
    doc = copy.deepcopy(KNOWLEDGE_BASE)
    doc["spec"]["embedding"] = {"provider": "local", **({"model": model} if model else {})}
    assert KnowledgeBase.model_validate(doc).spec.embedding.model == model


def test_openai_embedding_model_is_free() -> None:
    doc = copy.deepcopy(KNOWLEDGE_BASE)
    doc["spec"]["embedding"] = {"provider": "openai", "model": "all-MiniLM-L6-v2-static",
                                "baseURL": "http://embeddings.example:8000/v1"}  # fmt: skip
    assert KnowledgeBase.model_validate(doc).spec.embedding.model == "all-MiniLM-L6-v2-static"


def test_the_readme_s_knowledge_base_is_valid() -> None:
    """README's KnowledgeBase (languages, a source's override, status.languages) parses."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = next(
        b.split("```", 1)[0] for b in readme.split("```yaml\n") if "kind: KnowledgeBase" in b
    )
    kb = KnowledgeBase.model_validate(yaml.safe_load(block))
    assert kb.spec.language == "en"
    assert [s.language for s in kb.spec.sources if s.language] == ["fr"]
    assert kb.status is not None
    assert [(row.language, row.documents) for row in kb.status.languages] == [("en", 3), ("fr", 1)]
