"""Generate the CustomResourceDefinitions from the pydantic models.

``python -m kubevox_api.crd crds/`` (``make crds``) writes one YAML file per kind. The
pydantic JSON schema is turned into a Kubernetes *structural* schema: references inlined, optional
fields as plain omissions, defaults of nested objects made explicit, JSON-Schema-2020 forms
rewritten in the OpenAPI v3 dialect the API server speaks, and each model's :class:`Rule` s added
as CEL ``x-kubernetes-validations``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from .base import KubeModel
from .common import DNS_LABEL
from .contract import (
    APP_NAME,
    GROUP,
    KNOWLEDGE_BASE_PLURAL,
    LABEL_NAME,
    LABEL_PART_OF,
    VERSION,
    VOICE_AGENT_PLURAL,
    VOICE_AGENT_TEST_PLURAL,
)
from .knowledgebase import KnowledgeBase, KnowledgeBaseSpec, KnowledgeBaseStatus
from .voiceagent import VoiceAgent, VoiceAgentSpec
from .voiceagent_status import VoiceAgentStatus
from .voiceagenttest import VoiceAgentTest, VoiceAgentTestSpec, VoiceAgentTestStatus

CATEGORY = APP_NAME


@dataclass(frozen=True)
class Kind:
    """What the CRD of one kind is made of."""

    kind: type[KubeModel]
    spec: type[KubeModel]
    status: type[KubeModel]
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[dict[str, Any], ...]
    name_pattern: str | None = None
    """What metadata.name must match beyond its 63 characters (it is a label value of every
    child, so a longer one could never be applied)."""

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"


def column(
    name: str, type_: str, json_path: str, description: str, priority: int = 0
) -> dict[str, Any]:
    """An additionalPrinterColumn (priority 1: shown by ``kubectl get -o wide`` only)."""
    out: dict[str, Any] = {"name": name, "type": type_}
    if priority:
        out["priority"] = priority
    return {**out, "jsonPath": json_path, "description": description}


def _ready_column() -> dict[str, Any]:
    return column(
        "Ready",
        "string",
        '.status.conditions[?(@.type=="Ready")].status',
        "Whether the object is ready",
    )


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

VOICE_AGENT = Kind(
    kind=VoiceAgent,
    spec=VoiceAgentSpec,
    status=VoiceAgentStatus,
    plural=VOICE_AGENT_PLURAL,
    short_names=("va",),
    printer_columns=(
        _ready_column(),
        column("Replicas", "integer", ".status.replicas", "Worker pods"),
        column("Active Calls", "integer", ".status.activeCalls", "Calls in progress"),
        column(
            "Reason",
            "string",
            '.status.conditions[?(@.type=="Ready")].reason',
            "Why the agent is (not) ready",
            priority=1,
        ),
        AGE,
    ),
    # Dots are no DNS label: the runtime config names the agent with one.
    name_pattern=DNS_LABEL,
)

KNOWLEDGE_BASE = Kind(
    kind=KnowledgeBase,
    spec=KnowledgeBaseSpec,
    status=KnowledgeBaseStatus,
    plural=KNOWLEDGE_BASE_PLURAL,
    short_names=("kb",),
    printer_columns=(
        column("Phase", "string", ".status.phase", "Pending, Indexing, Ready or Failed"),
        column("Chunks", "integer", ".status.chunks", "Passages in the live index"),
        column(
            "Documents", "integer", ".status.documents", "Documents in the live index", priority=1
        ),
        AGE,
    ),
)

VOICE_AGENT_TEST = Kind(
    kind=VoiceAgentTest,
    spec=VoiceAgentTestSpec,
    status=VoiceAgentTestStatus,
    plural=VOICE_AGENT_TEST_PLURAL,
    short_names=("vat",),
    printer_columns=(
        column("Agent", "string", ".spec.agentRef", "The VoiceAgent under test"),
        column("Phase", "string", ".status.phase", "Pending, Running, Passed, Failed or Error"),
        column("Passed", "integer", ".status.passed", "Cases that passed"),
        column("Failed", "integer", ".status.failed", "Cases that failed"),
        column(
            "Config", "string", ".status.configHash", "The agent configuration tested", priority=1
        ),
        AGE,
    ),
)

KINDS = (VOICE_AGENT, KNOWLEDGE_BASE, VOICE_AGENT_TEST)


class _KubeSchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator, made to show ``default_factory`` defaults: the API server applies a
    nested object's defaults only when the object exists, and checks the CEL rules against the
    default itself, so the default of an object is the object with all its defaults."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        value = factory()  # type: ignore[call-arg]
        if isinstance(value, KubeModel):
            return value.to_k8s()
        return value

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model``, as the CRD carries it."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_KubeSchemaGenerator)
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _structural(node: JsonSchemaValue, defs: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        # The field's own description and default win over the referenced model's.
        node = {**target, **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**_structural(node.pop("allOf")[0], defs), **node}
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if node.get("default", ...) is None:
            del node["default"]
        if len(branches) == 1:
            node = {**_structural(branches[0], defs), **node}
        elif {b.get("type") for b in branches} <= {"string", "integer"}:
            node["x-kubernetes-int-or-string"] = True
        else:
            raise ValueError(f"cannot express a union in a structural schema: {branches}")
    for key in ("title", "propertyNames", "$defs"):
        node.pop(key, None)
    if "description" in node:
        node["description"] = _clean_description(node["description"])
    if "const" in node:
        node["enum"] = [node.pop("const")]
    # JSON Schema 2020's bound to OpenAPI v3's flag; a node seen twice (an optional model's
    # properties: its branch, then the merged node) already has the flag.
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node and not isinstance(node[bound], bool):
            node[limit] = node.pop(bound)
            node[bound] = True
    if node.get("x-kubernetes-preserve-unknown-fields"):
        node["type"] = "object"
        node.pop("additionalProperties", None)
        node.pop("maxLength", None)
        return node
    if node.get("type") == "object" and "maxLength" in node:
        node["maxProperties"] = node.pop("maxLength")
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]  # unknown fields are refused by field validation
    elif isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _structural(node["additionalProperties"], defs)
    if "properties" in node:
        node["properties"] = {k: _structural(v, defs) for k, v in node["properties"].items()}
    if "items" in node:
        node["items"] = _structural(node["items"], defs)
    if isinstance(node.get("required"), list):
        node["required"] = list(node["required"])  # no shared lists: no YAML anchors
    return _ordered(node)


def _clean_description(text: str) -> str:
    """Docstrings to one-line descriptions, as ``kubectl explain`` shows them."""
    return " ".join(text.replace("``", "`").split())


_KEY_ORDER = ("type", "description", "default", "enum")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    first = {k: node[k] for k in _KEY_ORDER if k in node}
    return first | {k: v for k, v in node.items() if k not in first}


def add_rules(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Attach each model's cross-field rules, as CEL, where the model sits in the schema."""
    rules = getattr(model, "rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [r.to_schema() for r in rules]
    for name, field in model.model_fields.items():
        alias = field.alias or name
        sub = schema.get("properties", {}).get(alias)
        if sub is None:
            continue
        for inner in _models_in(field.annotation):
            target = sub["items"] if sub.get("type") == "array" else sub
            add_rules(target, inner)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def name_schema(kind: Kind) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "maxLength": 63}
    if kind.name_pattern:
        out["pattern"] = kind.name_pattern
    return out


def crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec = model_schema(kind.spec)
    add_rules(spec, kind.spec)
    status = model_schema(kind.status)
    description = _clean_description(kind.kind.__doc__ or "")
    name = kind.kind.__name__
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.name,
            "labels": {LABEL_NAME: APP_NAME, LABEL_PART_OF: APP_NAME},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": name,
                "listKind": f"{name}List",
                "plural": kind.plural,
                "singular": name.lower(),
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in kind.printer_columns],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {
                                    "type": "string",
                                    "description": "Versioned schema of this object.",
                                },
                                "kind": {"type": "string", "description": "Kind of this object."},
                                "metadata": {
                                    "type": "object",
                                    "properties": {"name": name_schema(kind)},
                                },
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    """The CRD file of one kind. PyYAML is imported here: only writing the CRDs needs it, so the
    API itself depends on pydantic alone."""
    import yaml

    header = "# Generated from the pydantic models by `make crds`. Do not edit.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "crds")
    out.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        (out / f"{kind.name}.yaml").write_text(render(kind))
        print(f"wrote {out / (kind.name + '.yaml')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
