"""kubevox_api is a package of its own: pydantic alone, nothing from the operator or the runtime,
the contract's names are the models' own, and no module grows past 400 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Literal

import kubevox_api
from kubevox_api import KnowledgeBase, VoiceAgent, contract
from kubevox_api.crd import KINDS
from kubevox_api.voiceagenttest import VoiceAgentTest

PACKAGE = Path(kubevox_api.__file__).parent


def test_imports_pydantic_alone() -> None:
    """Importing the API (models, contract, CRD generation) loads no YAML library and nothing of
    the operator, the runtime or the development tools."""
    probe = (
        "import sys, kubevox_api, kubevox_api.contract, kubevox_api.crd; "
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(eval(out))  # a list literal of module names
    for forbidden in ("yaml", "kubevox_operator", "agent_runtime", "kubevox_devenv", "kopf"):
        assert forbidden not in loaded


def test_no_import_of_the_operator_or_the_runtime() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        for name in ("kubevox_operator", "agent_runtime", "kubevox_devenv"):
            assert f"import {name}" not in text, (path, name)
            assert f"from {name}" not in text, (path, name)


def test_models_carry_the_contracts_names() -> None:
    assert VoiceAgent.model_fields["api_version"].annotation == Literal[contract.API_VERSION]
    assert VoiceAgent.model_fields["kind"].annotation == Literal[contract.VOICE_AGENT_KIND]
    assert KnowledgeBase.model_fields["api_version"].annotation == Literal[contract.API_VERSION]
    assert KnowledgeBase.model_fields["kind"].annotation == Literal[contract.KNOWLEDGE_BASE_KIND]
    assert VoiceAgentTest.model_fields["kind"].annotation == Literal[contract.VOICE_AGENT_TEST_KIND]
    assert f"{contract.GROUP}/{contract.VERSION}" == contract.API_VERSION
    assert {k.kind.__name__: k.plural for k in KINDS} == {
        contract.VOICE_AGENT_KIND: contract.VOICE_AGENT_PLURAL,
        contract.KNOWLEDGE_BASE_KIND: contract.KNOWLEDGE_BASE_PLURAL,
        contract.VOICE_AGENT_TEST_KIND: contract.VOICE_AGENT_TEST_PLURAL,
    }


def test_modules_stay_small() -> None:
    for path in PACKAGE.glob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.name} has {lines} lines"
