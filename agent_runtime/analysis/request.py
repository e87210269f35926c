"""What the language model is asked about a finished call, and what of its answer is kept: one
request for every part the agent declares (``spec.analysis``), one JSON object back (its JSON
schema sent as the request's structured-output format), each part checked against its
declaration. A value that does not match is reported, never repaired or invented: a field of
the wrong type or outside its enum is ``missing``, like one the conversation did not give.
Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from kubevox_api.voiceagent_analysis import AnalysisSpec, DataField

from ..model_reply import VERDICT_SCHEMA, json_schema_format, strict_object

SUMMARY_MAX_CHARS = 2000
SPEAKERS = {"user": "caller", "assistant": "agent"}


def instructions(spec: AnalysisSpec) -> str:
    """The system message: the JSON object to write, one key per declared part."""
    keys = []
    if spec.summary is not None:
        extra = f" {spec.summary.instructions.strip()}" if spec.summary.instructions else ""
        keys.append(
            '"summary": two or three sentences: what the caller wanted and what the agent did'
            f" about it.{extra}"
        )
    if spec.structured_data is not None:
        fields = "\n".join(f"  - {_describe(f)}" for f in spec.structured_data.fields)
        keys.append(
            '"structuredData": an object with exactly these keys; null for a value the'
            f" conversation does not give (never guess):\n{fields}"
        )
    if spec.success_evaluation is not None:
        keys.append(
            '"success": {"verdict": "pass" or "fail", "reason": "<one sentence>"}: whether the'
            f" call met this rubric: {spec.success_evaluation.rubric.strip()}"
        )
    parts = "\n".join(f"- {k}" for k in keys)
    return (
        "You analyse a finished call between a caller and a voice agent, from its transcript."
        " Reply with one JSON object and nothing else, with these keys:\n"
        f"{parts}\nWrite the text in the language of the conversation."
    )


def response_format(spec: AnalysisSpec) -> dict[str, Any]:
    """The reply's JSON schema, as the request's structured-output format: one key per
    declared part, a data field ``null`` where the conversation does not give it (which
    ``result`` reports missing)."""
    properties: dict[str, Any] = {}
    if spec.summary is not None:
        properties["summary"] = {"type": "string"}
    if spec.structured_data is not None:
        fields = {f.name: _field_schema(f) for f in spec.structured_data.fields}
        properties["structuredData"] = strict_object(fields)
    if spec.success_evaluation is not None:
        properties["success"] = VERDICT_SCHEMA
    return json_schema_format("call_analysis", strict_object(properties))


def _field_schema(field: DataField) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": [field.type, "null"],  # the declared types are JSON Schema's names
        "description": field.description.strip(),
    }
    if field.enum:
        schema["enum"] = [*field.enum, None]
    return schema


def _describe(field: DataField) -> str:
    kind = field.type if not field.enum else "one of " + ", ".join(map(repr, field.enum))
    return f"{field.name} ({kind}): {field.description.strip()}"


def transcript_text(transcript: Sequence[Mapping[str, str]]) -> str:
    """The transcript as the model reads it: one line per message, who said it first."""
    return "\n".join(
        f"{SPEAKERS.get(m.get('role', ''), m.get('role', '?'))}: {m.get('text', '')}"
        for m in transcript
    )


def _valid(field: DataField, value: Any) -> Any | None:
    """``value`` if it is of ``field``'s declared type (and in its enum), else None."""
    if field.type == "string":
        ok = isinstance(value, str) and bool(value.strip())
        return value.strip() if ok and (not field.enum or value.strip() in field.enum) else None
    if field.type == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if field.type == "integer":
        # JSON has one number type: 3.0 is the integer 3, 3.5 is no integer.
        return int(value) if float(value).is_integer() else None
    return value


def result(spec: AnalysisSpec, reply: Mapping[str, Any]) -> dict[str, Any]:
    """The analysis kept from the model's JSON ``reply``: ``summary``, ``structured_data``
    and ``missing``, ``success``, as declared; ``problems`` names a part that came back
    unusable."""
    out: dict[str, Any] = {}
    problems = []
    if spec.summary is not None:
        summary = reply.get("summary")
        if isinstance(summary, str) and summary.strip():
            out["summary"] = summary.strip()[:SUMMARY_MAX_CHARS]
        else:
            problems.append("summary: no summary in the model's reply")
    if spec.structured_data is not None:
        values = reply.get("structuredData")
        values = values if isinstance(values, dict) else {}
        data, missing = {}, []
        for field in spec.structured_data.fields:
            value = _valid(field, values.get(field.name))
            if value is None:
                missing.append(field.name)
            else:
                data[field.name] = value
        out["structured_data"], out["missing"] = data, missing
    if spec.success_evaluation is not None:
        success = reply.get("success")
        verdict = success.get("verdict") if isinstance(success, dict) else None
        if isinstance(success, dict) and verdict in ("pass", "fail"):
            reason = str(success.get("reason") or "").strip() or "(no reason)"
            out["success"] = {"passed": verdict == "pass", "reason": reason}
        else:
            problems.append("success: no verdict in the model's reply")
    if problems:
        out["problems"] = problems
    return out
