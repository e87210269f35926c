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

from pydantic import BaseModel, ConfigDict, model_validator
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
    """A :class:`Rule` failed; the message names the field."""


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
        for rule in self.rules:
            if not rule.check(self):
                where = f"{rule.field_path.lstrip('.')}: " if rule.field_path else ""
                raise RuleViolation(f"{where}{rule.message}")
        return self

    def to_k8s(self) -> dict[str, Any]:
        """The object as it is written to the API: camelCase, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
