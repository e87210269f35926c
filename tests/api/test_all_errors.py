"""``kubevox-agent validate`` reports every error of a manifest at once, each naming its field,
and names the same fields the real API server names for the same manifest."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_runtime.cli import main
from tests.support.cases import KNOWLEDGE_BASE, VOICE_AGENT

# Six mistakes in five places: two schema errors (pattern, minimum) and four CEL rules, two of
# them in the same object (spec.scaling), where a first-error parser stops.
SEVERAL_ERRORS: dict[str, Any] = copy.deepcopy(VOICE_AGENT)
SEVERAL_ERRORS["metadata"] = {"name": "several", "namespace": "all-errors"}
SEVERAL_ERRORS["spec"].update(
    {
        "agentName": "Front_Desk",
        "stt": {"provider": "deepgram"},
        "llm": {"provider": "openai", "model": "gpt-4.1-mini"},
        "scaling": {
            "minReplicas": 5,
            "maxReplicas": 2,
            "targetCallsPerPod": 10,
            "maxCallsPerPod": 4,
        },
        "drainTimeoutSeconds": -5,
    }
)
EXPECTED_FIELDS = {
    "spec.agentName",
    "spec.stt.credentials",
    "spec.llm.credentials",
    "spec.scaling.minReplicas",
    "spec.scaling.targetCallsPerPod",
    "spec.drainTimeoutSeconds",
}
_LINE = re.compile(r"^  (\S+): ")


def _validate(tmp_path: Path, *docs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    assert main(["validate", "-f", str(path)]) == 2
    return capsys.readouterr().err


def _fields(report: str) -> set[str]:
    return {m.group(1) for line in report.splitlines() if (m := _LINE.match(line))}


def test_validate_reports_every_error_naming_each_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _validate(tmp_path, SEVERAL_ERRORS, capsys=capsys)
    assert "6 errors" in report, report
    assert _fields(report) == EXPECTED_FIELDS, report


def test_validate_reports_errors_of_every_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = copy.deepcopy(KNOWLEDGE_BASE)
    kb["metadata"]["name"] = "docs"
    kb["spec"]["sources"] = [{"name": "a", "url": "ftp://x"}, {"name": "b"}]
    agent = {
        **SEVERAL_ERRORS,
        "spec": {**SEVERAL_ERRORS["spec"], "knowledgeBases": [{"name": "docs"}]},
    }
    report = _validate(tmp_path, agent, kb, capsys=capsys)
    assert "[0] VoiceAgent: 6 errors" in report, report
    assert "[1] KnowledgeBase: 2 errors" in report, report
    assert {"spec.sources[0].url", "spec.sources[1]"} <= _fields(report), report


def test_one_error_stays_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = copy.deepcopy(VOICE_AGENT)
    doc["spec"]["agentName"] = "Front_Desk"
    report = _validate(tmp_path, doc, capsys=capsys)
    assert report.count("\n") == 1, report
    assert ": spec.agentName: " in report, report


@pytest.mark.cluster
def test_validate_names_the_fields_the_api_server_names(
    crds_installed: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plane = crds_installed
    # A namespace of its own: test_admission deletes its own when its module ends.
    made = plane.kubectl_run("create", "namespace", "all-errors")
    assert made.returncode == 0 or "AlreadyExists" in made.stderr, made.stderr
    out = plane.kubectl_run(
        "create", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-",
        input=json.dumps(SEVERAL_ERRORS),
    )  # fmt: skip
    assert out.returncode != 0
    assert "is invalid" in out.stderr, out.stderr
    # kubectl prints the Status message: `... is invalid: [field: reason, field: reason, ...]`.
    server = set(re.findall(r"(spec\.[A-Za-z0-9_.\[\]]+): ", out.stderr))
    ours = _fields(_validate(tmp_path, SEVERAL_ERRORS, capsys=capsys))
    assert server == EXPECTED_FIELDS, out.stderr
    assert ours == server
