"""Base class of every API model, and the cross-field rules shared by pydantic and CEL.

A cross-field rule is written once, as a :class:`Rule`: its CEL expression goes into the CRD
(``x-kubernetes-validations``, enforced by the API server at admission) and its Python twin is
checked when pydantic parses a manifest (``kubevox-agent validate``, the runtime's config). The
tests run the same bad objects through both and expect the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel


@dataclass(frozen=True)
class Rule:
    """A cross-field validation rule, enforced by the API server (CEL) and by pydantic."""

    cel: str
    """The CEL expression, evaluated against the object the rule is attached to (``self``)."""
    message: str
    """What a human reads when the rule fails; it names the field."""
    check: Callable[[Any], bool]
    """The same rule in Python, given the parsed model; True when the object is valid."""
    field_path: str | None = None
    """JSONPath (relative to the object) of the field the error is reported on."""

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


class RuleViolation(ValueError):
    """One or more rules (:class:`Rule`) of a model failed; the message names each field.

    ``violations``: (field path relative to the model or None, message) of every failed rule,
    so that a caller can report each at its own field, as the API server does."""

    def __init__(self, violations: list[tuple[str | None, str]]) -> None:
        self.violations = violations
        super().__init__(
            "; ".join(f"{path.lstrip('.')}: {msg}" if path else msg for path, msg in violations)
        )


class KubeModel(BaseModel):
    """A Kubernetes-style API object part: camelCase on the wire, documented, closed to typos."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()
    """Cross-field rules of this model (CEL in the CRD, Python here)."""

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        # Every rule, not the first failing one: the API server reports them all.
        failed = [(r.field_path, r.message) for r in self.rules if not r.check(self)]
        if failed:
            raise RuleViolation(failed)
        return self

    def to_k8s(self) -> dict[str, Any]:
        """The object as it is written to the API: camelCase, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def field_errors(err: ValidationError) -> list[tuple[str, str]]:
    """Every error of a parse, as (field, message) with the field written the way the API
    server writes it (``spec.sources[0].url``); a failed rule at its own fieldPath."""
    out: list[tuple[str, str]] = []
    for e in err.errors():
        where = _field_path(e["loc"])
        exc = (e.get("ctx") or {}).get("error")
        if isinstance(exc, RuleViolation):
            for path, message in exc.violations:
                out.append((_join(where, path or ""), message))
        elif e["type"] == "extra_forbidden":
            out.append((where, "unknown field"))
        else:
            out.append((where, str(e["msg"]).removeprefix("Value error, ")))
    return out


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or part.startswith(("function-", "union")):
            continue  # pydantic's name of a union member or validator, not a field
        else:
            out += f".{part}" if out else part
    return out


def _join(base: str, rel: str) -> str:
    rel = rel.lstrip(".")
    if not rel:
        return base
    return f"{base}.{rel}" if base else rel
