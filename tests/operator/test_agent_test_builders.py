"""The conversation-test run's objects (builders/agent_test.py) and its egress policy: what the
Job runs, with what it may reach and hold, and when a run is new. Pure."""

from __future__ import annotations

import yaml
from kubevox_api import AgentRuntimeConfig, VoiceAgent, contract, render_runtime_config
from kubevox_api.voiceagenttest import VoiceAgentTest
from kubevox_operator.builders.agent import agent_selector
from kubevox_operator.builders.agent_test import build_test_run
from kubevox_operator.builders.network import EgressSettings, agent_egress

from tests.support.objects import agent_test, voice_agent

NS = "team"
OWNER = {
    "apiVersion": contract.API_VERSION,
    "kind": "VoiceAgent",
    "metadata": {"name": "va", "uid": "u1"},
}


def agent(**spec: object) -> VoiceAgent:
    return VoiceAgent.model_validate(voice_agent("va", NS, **spec))


def suite(name: str = "smoke", **spec: object) -> VoiceAgentTest:
    body = agent_test(name, NS)
    body["spec"].update(spec)
    return VoiceAgentTest.model_validate(body)


def test_the_job_runs_the_suites_in_text_mode_and_reports_in_its_termination_message() -> None:
    run = build_test_run(agent(), OWNER, [suite()], {}, "img:1", "cafe")
    config_map, job = run.objects
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "test",
        "--config",
        f"{contract.TESTS_DIR}/{contract.CONFIG_FILE}",
        "-f",
        f"{contract.TESTS_DIR}/{contract.TESTS_FILE}",
        "--output",
        "json",
        "--report-file",
        contract.TERMINATION_LOG,
    ]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    docs = list(yaml.safe_load_all(config_map["data"][contract.TESTS_FILE]))
    assert [VoiceAgentTest.model_validate(d).spec for d in docs] == [suite().spec]
    # The configuration under test travels with the suites, not in the workers' ConfigMap
    # (which holds the stable configuration while a canary runs: seen on the node).
    config = AgentRuntimeConfig.model_validate_json(config_map["data"][contract.CONFIG_FILE])
    assert config == render_runtime_config(agent(), {})
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert all(v.get("configMap", {}).get("name") != "va-config" for v in volumes)
    assert job["spec"]["activeDeadlineSeconds"] == 900
    assert job["metadata"]["name"] == run.job_name == f"va-test-{run.run}"


def test_the_test_pod_holds_no_api_token_no_livekit_keys_and_is_no_worker() -> None:
    run = build_test_run(agent(), OWNER, [suite()], {}, "img:1", "cafe")
    pod = run.objects[1]["spec"]["template"]
    env = {e["name"] for e in pod["spec"]["containers"][0]["env"]}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert not env & {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"}
    # The worker's multiprocess metrics directory does not exist in this pod (seen on the node:
    # every retrieval failed to record its latency).
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
    assert "KUBEVOX_LLM_API_KEY" in env  # the agent's own language model
    labels = pod["metadata"]["labels"]
    # The workers' Deployment, PDB and metrics Service select agent_selector: not this pod.
    assert not all(labels.get(k) == v for k, v in agent_selector(agent()).items())
    assert labels[contract.LABEL_AGENT_TEST] == "va"


def test_a_judge_with_credentials_gets_its_key() -> None:
    judge = {
        "provider": "openai",
        "model": "gpt-4.1",
        "credentials": {"secretKeyRef": {"name": "judge", "key": "token"}},
    }
    run = build_test_run(agent(), OWNER, [suite(judge=judge)], {}, "img:1", "cafe")
    env = run.objects[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "KUBEVOX_JUDGE_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "judge", "key": "token"}},
    } in env


def test_a_run_is_new_for_a_new_configuration_or_an_edited_suite_and_only_then() -> None:
    a = agent()
    first = build_test_run(a, OWNER, [suite()], {}, "img:1", "cafe").run
    assert build_test_run(a, OWNER, [suite()], {}, "img:2", "cafe").run == first
    assert build_test_run(a, OWNER, [suite()], {}, "img:1", "beef").run != first
    edited = suite(judgeTimeoutSeconds=10)
    assert build_test_run(a, OWNER, [edited], {}, "img:1", "cafe").run != first
    two = [suite("b"), suite("a")]
    assert (
        build_test_run(a, OWNER, two, {}, "img:1", "cafe").run
        == build_test_run(a, OWNER, two[::-1], {}, "img:1", "cafe").run
    )
    deadline = build_test_run(a, OWNER, two, {}, "img:1", "cafe").objects[1]["spec"]
    assert deadline["activeDeadlineSeconds"] == 1800


def test_the_test_pods_may_reach_the_language_models_and_not_livekit() -> None:
    judge = {"provider": "openai", "model": "m", "baseURL": "http://judge.evals.svc:8000/v1"}
    a = agent(llm={"provider": "openai", "model": "m", "baseURL": "http://llm.models.svc:8000/v1"})
    policies = agent_egress(a, OWNER, {}, {}, EgressSettings(), [suite(judge=judge)])
    tests = next(p for p in policies if p["metadata"]["name"] == "va-test-egress")
    assert tests["spec"]["podSelector"]["matchLabels"][contract.LABEL_AGENT_TEST] == "va"
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in tests["spec"]["egress"]
        for peer in rule.get("to", [])
        if "namespaceSelector" in peer
    }
    assert {"models", "evals"} <= namespaces
    workers = next(p for p in policies if p["metadata"]["name"] == "va-worker-egress")
    assert len(workers["spec"]["egress"]) > len(tests["spec"]["egress"])  # LiveKit, the API
    assert all(
        p["metadata"]["name"] != "va-test-egress"
        for p in agent_egress(a, OWNER, {}, {}, EgressSettings())
    )
