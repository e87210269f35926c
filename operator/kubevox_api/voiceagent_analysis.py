"""What an agent learns from each call once it is over (``spec.analysis``): a summary, the data
fields the team declares, and a verdict against a rubric, by a language model, delivered as the
``call.analyzed`` event.

The analysis runs after the call, off its critical path: the call's end writes its record (and,
for the analysis, its transcript) to the agent's outbox, and a worker's delivery loop analyses
it there, bounded by ``timeoutSeconds`` (agent_runtime/analysis). A worker drained or killed
meanwhile leaves it to another worker, as with every event.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel, Rule
from .common import UniqueByName
from .voiceagent_providers import LLMEndpoint

FieldType = Literal["string", "number", "integer", "boolean"]
"""JSON types a structured-data field may have."""

FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-zA-Z0-9_]{0,62}$")]
Instructions = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
EnumValue = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class DataField(KubeModel):
    """One value to extract from the conversation."""

    name: FieldName
    """The field's key in ``call.analyzed``'s ``structuredData`` (e.g. ``reason``)."""
    type: FieldType = "string"
    """Its JSON type; a value of another type is reported missing, never converted."""
    description: Instructions
    """What the value is, for the language model (e.g. "why the caller called")."""
    enum: list[EnumValue] = Field(default_factory=list, max_length=50)
    """The only values it may take (string fields); empty: any."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="size(self.enum) == 0 || !has(self.type) || self.type == 'string'",
            message="enum applies to string fields only",
            check=lambda f: not f.enum or f.type == "string",
            field_path=".enum",
        ),
    )


class StructuredData(KubeModel):
    """Fields extracted from the conversation and checked against their declaration."""

    fields: UniqueByName[DataField] = Field(min_length=1, max_length=30)
    """The fields; one the conversation does not give, or whose value does not match its
    declaration, is listed in ``missing``, never invented."""


class Summary(KubeModel):
    """A short summary of the call."""

    instructions: Instructions | None = None
    """What the summary must say or leave out, added to kubevox's own instructions (e.g. "name
    the medication asked about")."""


class SuccessEvaluation(KubeModel):
    """Whether the call achieved what it was for."""

    rubric: Instructions
    """What a successful call achieves (e.g. "the caller got the opening hours or was
    transferred"); the verdict is pass or fail, with a one-sentence reason."""


class AnalysisSpec(KubeModel):
    """The analysis of each call, after it ends: set at least one of summary, structuredData
    and successEvaluation."""

    llm: LLMEndpoint | None = None
    """The language model that analyses (default: the agent's ``llm``, without its fallbacks).
    Provider ``local`` (135M parameters) cannot analyse a call reliably and is refused."""
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    """Longest time for one call's analysis; past it, ``call.analyzed`` reports the failure
    (``error``) and carries no result."""
    summary: Summary | None = None
    """A summary of the call."""
    structured_data: StructuredData | None = None
    """Data fields extracted from the call."""
    success_evaluation: SuccessEvaluation | None = None
    """A pass or fail verdict against a rubric."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.summary) || has(self.structuredData) || has(self.successEvaluation)",
            message="set at least one of summary, structuredData and successEvaluation",
            check=lambda a: any(
                x is not None for x in (a.summary, a.structured_data, a.success_evaluation)
            ),
        ),
        Rule(
            cel="!has(self.llm) || self.llm.provider != 'local'",
            message="provider local (135M parameters) cannot analyse calls: name another model",
            check=lambda a: a.llm is None or a.llm.provider != "local",
            field_path=".llm.provider",
        ),
    )
