"""Loading the runtime config: the operator's rendered file, or a VoiceAgent manifest.

Both are parsed with the operator's own models (``kubevox_api``), so the runtime can
never disagree with the operator about what a VoiceAgent means.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from kubevox_api import (
    CONFIG_ENV,
    AgentRuntimeConfig,
    KnowledgeBase,
    VoiceAgent,
    render_runtime_config,
)
from kubevox_api.base import field_errors
from kubevox_api.contract import KNOWLEDGE_BASE_KIND, VOICE_AGENT_KIND, VOICE_AGENT_TEST_KIND
from kubevox_api.voiceagenttest import VoiceAgentTest
from pydantic import ValidationError

from .errors import ConfigError


def _format_validation_error(source: str, err: ValidationError) -> str:
    """Every error of the parse, each naming its field (kubectl shows them all too)."""
    return _format_errors(source, field_errors(err))


def _format_errors(source: str, errors: list[tuple[str, str]]) -> str:
    lines = [f"{field}: {msg}" if field else msg for field, msg in errors]
    if len(lines) == 1:
        return f"{source}: {lines[0]}"
    return f"{source}: {len(lines)} errors:\n" + "\n".join(f"  {line}" for line in lines)


def _read_documents(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        if path.suffix == ".json":
            return [json.loads(text)]
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {e}") from e


def load_runtime_config(path: str | Path) -> AgentRuntimeConfig:
    """Parse a config rendered by the operator (JSON or YAML)."""
    path = Path(path)
    docs = _read_documents(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ConfigError(f"{path}: expected one AgentRuntimeConfig object")
    try:
        return AgentRuntimeConfig.model_validate(docs[0])
    except ValidationError as e:
        raise ConfigError(_format_validation_error(str(path), e)) from e


def _documents(paths: Sequence[str | Path]) -> list[tuple[str, Any]]:
    """Every document of every file, each with where it comes from (``file[index]``)."""
    out = []
    for path in map(Path, paths):
        out += [(f"{path}[{i}]", doc) for i, doc in enumerate(_read_documents(path))]
    return out


def _kind(doc: Any) -> Any:
    return doc.get("kind") if isinstance(doc, dict) else None


def load_manifest(*paths: str | Path) -> AgentRuntimeConfig:
    """Render a VoiceAgent manifest (plus the KnowledgeBase documents in the same files) into
    the runtime config, with the operator's own rendering code. Documents of other kinds
    (a VoiceAgentTest, a Secret) are left to their own readers."""
    where = ", ".join(map(str, paths))
    agent: VoiceAgent | None = None
    kbs: dict[str, KnowledgeBase] = {}
    invalid: list[str] = []  # every document's errors, not the first one's
    agents = 0
    for source, doc in _documents(paths):
        kind = _kind(doc)
        try:
            if kind == VOICE_AGENT_KIND:
                agents += 1
                if agents > 1:
                    raise ConfigError(f"{where}: more than one VoiceAgent")
                agent = VoiceAgent.model_validate(doc)
            elif kind == KNOWLEDGE_BASE_KIND:
                kb = KnowledgeBase.model_validate(doc)
                kbs[str(kb.metadata.get("name", ""))] = kb
        except ValidationError as e:
            invalid.append(_format_validation_error(f"{source} {kind}", e))
    if invalid:
        raise ConfigError("\n".join(invalid))
    if agent is None:
        raise ConfigError(f"{where}: no VoiceAgent document (kind: VoiceAgent)")
    if not agent.metadata.get("name"):
        raise ConfigError(f"{where}: metadata.name: required")
    for ref in agent.spec.knowledge_bases:
        if ref.name not in kbs:
            raise ConfigError(
                f"{where}: spec.knowledgeBases: KnowledgeBase {ref.name!r} is not in the file;"
                " add its manifest as another YAML document"
            )
    try:
        return render_runtime_config(agent, kbs)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(where, e)) from e


def load_tests(agent: str, *paths: str | Path) -> list[VoiceAgentTest]:
    """The VoiceAgentTest documents of ``paths`` whose ``agentRef`` is ``agent``."""
    where = ", ".join(map(str, paths))
    suites: list[VoiceAgentTest] = []
    others: list[VoiceAgentTest] = []
    invalid: list[str] = []
    for source, doc in _documents(paths):
        if _kind(doc) != VOICE_AGENT_TEST_KIND:
            continue
        try:
            suite = VoiceAgentTest.model_validate(doc)
        except ValidationError as e:
            invalid.append(_format_validation_error(f"{source} {VOICE_AGENT_TEST_KIND}", e))
            continue
        (suites if suite.spec.agent_ref == agent else others).append(suite)
    if invalid:
        raise ConfigError("\n".join(invalid))
    if not suites:
        named = f" (they test {sorted({s.spec.agent_ref for s in others})})" if others else ""
        raise ConfigError(f"{where}: no VoiceAgentTest with agentRef {agent!r}{named}")
    return suites


def resolve_config_path(flag: str | None, env: Mapping[str, str] = os.environ) -> str:
    path = flag or env.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"no config: pass --config FILE or set {CONFIG_ENV}")
    return path
