"""What the language model is asked about a call and what of its answer is kept
(agent_runtime/analysis/request.py): one JSON object with a key per declared part; each data
field checked against its declaration, a value of the wrong type or outside its enum reported
missing, never converted or invented."""

from __future__ import annotations

from typing import Any

import pytest
from kubevox_api.voiceagent_analysis import AnalysisSpec

from agent_runtime.analysis.request import (
    SUMMARY_MAX_CHARS,
    instructions,
    response_format,
    result,
)

SPEC = AnalysisSpec.model_validate(
    {
        "summary": {"instructions": "Name the medication asked about."},
        "structuredData": {
            "fields": [
                {"name": "reason", "description": "why the caller called",
                 "enum": ["appointment", "prescription", "billing", "other"]},
                {"name": "patientName", "description": "the patient's name"},
                {"name": "age", "type": "integer", "description": "the patient's age"},
                {"name": "balance", "type": "number", "description": "the amount owed"},
                {"name": "urgent", "type": "boolean", "description": "whether it is urgent"},
            ]
        },
        "successEvaluation": {"rubric": "The caller got the pharmacy's hours."},
    }
)  # fmt: skip


def test_the_request_names_every_declared_part_and_field() -> None:
    text = instructions(SPEC)
    for part in ('"summary"', '"structuredData"', '"success"', "Name the medication"):
        assert part in text
    assert "reason (one of 'appointment', 'prescription', 'billing', 'other')" in text
    assert "age (integer): the patient's age" in text
    assert "The caller got the pharmacy's hours." in text
    only_summary = AnalysisSpec.model_validate({"summary": {}})
    assert '"structuredData"' not in instructions(only_summary)
    assert '"success"' not in instructions(only_summary)


def test_the_reply_s_schema_holds_each_part_to_its_declaration_and_allows_null() -> None:
    fmt = response_format(SPEC)
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    # Strict structured outputs: every key required, no other key, at every level.
    assert schema["required"] == ["summary", "structuredData", "success"]
    assert schema["additionalProperties"] is False
    data = schema["properties"]["structuredData"]
    assert data["required"] == ["reason", "patientName", "age", "balance", "urgent"]
    assert data["additionalProperties"] is False
    fields = data["properties"]
    assert fields["reason"]["type"] == ["string", "null"]
    assert fields["reason"]["enum"] == ["appointment", "prescription", "billing", "other", None]
    assert fields["age"] == {"type": ["integer", "null"], "description": "the patient's age"}
    assert fields["balance"]["type"] == ["number", "null"]
    assert fields["urgent"]["type"] == ["boolean", "null"]
    assert "enum" not in fields["patientName"]
    verdict = schema["properties"]["success"]
    assert verdict["properties"]["verdict"]["enum"] == ["pass", "fail"]
    assert verdict["required"] == ["verdict", "reason"]
    only_summary = response_format(AnalysisSpec.model_validate({"summary": {}}))
    assert only_summary["json_schema"]["schema"]["required"] == ["summary"]


def test_a_good_reply_is_kept_as_declared() -> None:
    reply = {
        "summary": "  The caller asked when the pharmacy opens on Saturday.  ",
        "structuredData": {
            "reason": "prescription",
            "patientName": "Ann Lee",
            "age": 42.0,  # JSON's one number type: 42.0 is the integer 42
            "balance": 12.5,
            "urgent": False,
        },
        "success": {"verdict": "pass", "reason": "The agent gave the hours."},
    }
    assert result(SPEC, reply) == {
        "summary": "The caller asked when the pharmacy opens on Saturday.",
        "structured_data": {
            "reason": "prescription",
            "patientName": "Ann Lee",
            "age": 42,
            "balance": 12.5,
            "urgent": False,
        },
        "missing": [],
        "success": {"passed": True, "reason": "The agent gave the hours."},
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reason", "refund"),  # outside the enum
        ("reason", None),  # the conversation did not say
        ("patientName", ""),
        ("patientName", 7),
        ("age", 41.5),
        ("age", "42"),  # a string is not converted
        ("age", True),  # nor a boolean taken for a number
        ("balance", "12.50"),
        ("balance", float("inf")),
        ("urgent", "yes"),
        ("urgent", 1),
    ],
)
def test_a_value_that_does_not_match_its_declaration_is_missing(field: str, value: Any) -> None:
    got = result(SPEC, {"structuredData": {field: value}})
    assert field not in got["structured_data"]
    assert field in got["missing"]


def test_unusable_parts_are_named_and_nothing_is_invented() -> None:
    """No summary, no verdict, no data object: each part says so; no field is filled."""
    got = result(SPEC, {"summary": 3, "structuredData": "reason: billing", "success": "pass"})
    assert got == {
        "structured_data": {},
        "missing": ["reason", "patientName", "age", "balance", "urgent"],
        "problems": [
            "summary: no summary in the model's reply",
            "success: no verdict in the model's reply",
        ],
    }
    long = result(SPEC, {"summary": "x" * (SUMMARY_MAX_CHARS + 50)})
    assert len(long["summary"]) == SUMMARY_MAX_CHARS
    failed = result(SPEC, {"success": {"verdict": "fail"}})
    assert failed["success"] == {"passed": False, "reason": "(no reason)"}
