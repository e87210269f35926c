"""Loading the runtime config: the operator's rendered file, or a VoiceAgent manifest.

Both are parsed with the operator's own models (``kubevox_api``), so the runtime can
never disagree with the operator about what a VoiceAgent means.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
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
from kubevox_api.contract import KNOWLEDGE_BASE_KIND, VOICE_AGENT_KIND
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


def load_manifest(path: str | Path) -> AgentRuntimeConfig:
    """Render a VoiceAgent manifest (plus any KnowledgeBase documents in the same file) into
    the runtime config, with the operator's own rendering code."""
    path = Path(path)
    agent: VoiceAgent | None = None
    kbs: dict[str, KnowledgeBase] = {}
    invalid: list[str] = []  # every document's errors, not the first one's
    agents = 0
    for i, doc in enumerate(_read_documents(path)):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        try:
            if kind == VOICE_AGENT_KIND:
                agents += 1
                if agents > 1:
                    raise ConfigError(f"{path}: more than one VoiceAgent")
                agent = VoiceAgent.model_validate(doc)
            elif kind == KNOWLEDGE_BASE_KIND:
                kb = KnowledgeBase.model_validate(doc)
                kbs[str(kb.metadata.get("name", ""))] = kb
        except ValidationError as e:
            invalid.append(_format_validation_error(f"{path}[{i}] {kind}", e))
    if invalid:
        raise ConfigError("\n".join(invalid))
    if agent is None:
        raise ConfigError(f"{path}: no VoiceAgent document (kind: VoiceAgent)")
    if not agent.metadata.get("name"):
        raise ConfigError(f"{path}: metadata.name: required")
    for ref in agent.spec.knowledge_bases:
        if ref.name not in kbs:
            raise ConfigError(
                f"{path}: spec.knowledgeBases: KnowledgeBase {ref.name!r} is not in the file;"
                " add its manifest as another YAML document"
            )
    try:
        return render_runtime_config(agent, kbs)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(str(path), e)) from e


def resolve_config_path(flag: str | None, env: Mapping[str, str] = os.environ) -> str:
    path = flag or env.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"no config: pass --config FILE or set {CONFIG_ENV}")
    return path
