"""The VoiceAgentTest kind: the sample parses, bad suites are refused naming the field, and
``kubevox-agent test`` finds the suites of the agent it tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubevox_api.base import field_errors
from kubevox_api.voiceagenttest import ReportedCase, TestReport, VoiceAgentTest
from kubevox_devenv.controlplane import ControlPlane
from pydantic import ValidationError

from agent_runtime.config import load_tests
from agent_runtime.errors import ConfigError

SAMPLE = Path(__file__).parents[2] / "manifests" / "samples" / "tests" / "support-agent-tests.yaml"
CASE = {"name": "hours", "turns": [{"say": "When are you open?"}]}


def suite(**spec: object) -> dict[str, object]:
    return {"kind": "VoiceAgentTest", "spec": {"agentRef": "support", "cases": [CASE], **spec}}


def test_the_sample_suite_parses() -> None:
    parsed = VoiceAgentTest.model_validate(yaml.safe_load(SAMPLE.read_text()))
    assert parsed.spec.agent_ref == "support"
    assert [c.name for c in parsed.spec.cases] == [
        "saturday-hours",
        "sunday-closed",
        "two-questions",
        "out-of-scope",
    ]
    assert parsed.spec.judge_timeout_seconds == 30


BAD: list[tuple[dict[str, object], str]] = [
    ({"cases": [CASE, CASE]}, "spec.cases"),
    ({"cases": []}, "spec.cases"),
    ({"cases": [{**CASE, "name": "Not A Name"}]}, "spec.cases[0].name"),
    ({"cases": [{**CASE, "turns": []}]}, "spec.cases[0].turns"),
    (
        {"cases": [{**CASE, "turns": [{"say": "Hi", "expect": {"calls": ["hang_up"]}}]}]},
        "spec.cases[0].turns[0].expect.calls[0]",
    ),
    (
        {"cases": [{**CASE, "turns": [{"say": "Hi", "expect": {"maxLatencyMs": 0}}]}]},
        "spec.cases[0].turns[0].expect.maxLatencyMs",
    ),
    ({"judgeTimeoutSeconds": 0}, "spec.judgeTimeoutSeconds"),
    ({"judge": {"provider": "local", "baseURL": "http://x"}}, "spec.judge.provider"),
]
"""Bad suites, and the field each error must name (pydantic's path; the API server's too)."""


@pytest.mark.parametrize(("spec", "field"), BAD)
def test_a_bad_suite_is_refused_naming_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        VoiceAgentTest.model_validate(suite(**spec))
    assert field in [f for f, _ in field_errors(err.value)], field_errors(err.value)


def test_the_suites_of_the_agent_are_found(tmp_path: Path) -> None:
    other = suite(agentRef="billing")
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump_all([suite(), other, {"kind": "ConfigMap"}]))
    assert [s.spec.agent_ref for s in load_tests("support", path)] == ["support"]
    with pytest.raises(ConfigError, match=r"no VoiceAgentTest with agentRef 'front-desk'"):
        load_tests("front-desk", path)
    path.write_text(yaml.safe_dump(suite(cases=[{**CASE, "turns": []}])))
    with pytest.raises(
        ConfigError, match=r"tests\.yaml\[0\] VoiceAgentTest: spec\.cases\[0\]\.turns"
    ):
        load_tests("support", path)


@pytest.mark.cluster
def test_the_api_server_takes_the_samples_and_refuses_bad_suites_naming_the_field(
    crds_installed: ControlPlane,
) -> None:
    """The same cases at admission (the CRD generated from the same models): kubectl apply of a
    bad suite fails with the field in the message."""
    samples = sorted((SAMPLE.parent).glob("*.yaml"))
    for path in samples:
        out = crds_installed.kubectl_run(
            "apply", "--dry-run=server", "-n", "default", "-f", str(path)
        )
        assert out.returncode == 0, out.stderr
    for spec, field in BAD:
        body = {"apiVersion": "kubevox.dev/v1alpha1", "metadata": {"name": "bad"}, **suite(**spec)}
        out = crds_installed.kubectl_run(
            "apply", "--dry-run=server", "-n", "default", "-f", "-", input=json.dumps(body)
        )
        assert out.returncode != 0, spec
        assert field in out.stderr, (field, out.stderr)


def _report(cases: list[tuple[str, bool, list[str]]]) -> TestReport:
    return TestReport(
        config_hash="a" * 16,
        suites_hash="b" * 16,
        cases=[ReportedCase(suite="support", name=n, passed=p, reasons=r) for n, p, r in cases],
    )


def test_a_small_report_is_whole() -> None:
    report = _report([("hours", True, []), ("parking", False, ["turn 1: contains 'Elm'"])])
    assert TestReport.model_validate_json(report.termination_message()) == report


def test_a_large_report_fits_in_4_kib_counting_passed_cases_before_dropping_failed_ones() -> None:
    """The kubelet keeps 4 KiB of a termination message: reasons go first, then passed cases
    are only counted, and only then are failed cases counted instead of named."""
    why = ["turn 1: " + "the reply does not contain it " * 15] * 5
    cases = [
        (f"case-{i:03d}-" + "x" * 40, i % 7 != 0, why if i % 7 == 0 else []) for i in range(200)
    ]
    text = _report(cases).termination_message()
    assert len(text.encode()) <= 4096
    cut = TestReport.model_validate_json(text)
    assert all(not c.passed for c in cut.cases)  # passed ones counted, not named
    failed = [n for n, passed, _ in cases if not passed]
    named = [c.name for c in cut.cases]
    assert named == failed[: len(named)]  # the first failed ones, in order
    assert cut.passed_unlisted == {"support": 200 - len(failed)}
    assert cut.failed_unlisted.get("support", 0) == len(failed) - len(named)
    # 29 failed cases named with a 49-character name each fit: none is dropped.
    assert len(named) == len(failed) == 29
