"""The committed CRDs are exactly what the models generate, and are well-formed structural
schemas (every property typed and described)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubevox_api.crd import KINDS, KNOWLEDGE_BASE, Kind, render
from kubevox_api.languages import KNOWLEDGE_LANGUAGES, TEXT_LANGUAGES

CRDS = Path(__file__).parents[2] / "crds"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_committed_crd_matches_models(kind: Kind) -> None:
    committed = (CRDS / f"{kind.name}.yaml").read_text()
    assert committed == render(kind), "crds/ is stale: run `make crds` and commit the result"


def _walk(node: dict[str, Any], path: str) -> list[str]:
    problems = []
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        problems.append(f"{path}: no type")
    for name, sub in node.get("properties", {}).items():
        if "description" not in sub:
            problems.append(f"{path}.{name}: no description")
        problems += _walk(sub, f"{path}.{name}")
    if "items" in node:
        problems += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}{{}}")
    return problems


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_field_is_typed_and_documented(kind: Kind) -> None:
    crd = yaml.safe_load((CRDS / f"{kind.name}.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    problems = _walk(schema["properties"]["spec"], "spec") + _walk(
        schema["properties"]["status"], "status"
    )
    assert problems == []


def test_the_knowledge_languages_are_the_apis_one_list() -> None:
    """spec.language and a source's language are bounded by kubevox_api.languages, and their
    descriptions (kubectl explain) name every language."""
    crd = yaml.safe_load((CRDS / f"{KNOWLEDGE_BASE.name}.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    source = spec["properties"]["sources"]["items"]["properties"]["language"]
    for field in (spec["properties"]["language"], source):
        assert tuple(field["enum"]) == KNOWLEDGE_LANGUAGES
        for code in KNOWLEDGE_LANGUAGES:
            assert f"`{code}`" in field["description"]
    assert spec["properties"]["language"]["default"] == "en"
    assert "default" not in source  # a source inherits the KnowledgeBase's
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    languages = status["properties"]["languages"]
    assert languages["items"]["properties"]["language"]["enum"] == list(TEXT_LANGUAGES)
    assert languages["maxItems"] == len(TEXT_LANGUAGES)
