"""spec.callEvents in the workers' objects (pure builders): the outbox's and each sink's secret
reach the worker only by secretKeyRef, the conversation tests' pod gets none of them (a test is
no call), and the workers' egress policy lets them reach the webhook and the Redis servers."""

from __future__ import annotations

from typing import Any

from kubevox_api import VoiceAgent, secret_refs
from kubevox_api.runtime_config import credential_env
from kubevox_api.voiceagent_events import OUTBOX_REDIS_ENV, sink_secret_env
from kubevox_api.voiceagenttest import VoiceAgentTest
from kubevox_operator.builders import network
from kubevox_operator.builders.agent import worker_env
from kubevox_operator.builders.agent_test import build_test_run
from kubevox_operator.builders.network import EgressSettings, agent_egress

from tests.support.objects import agent_test, voice_agent

NS = "team"
EVENTS = {
    "outbox": {"redisUrlSecretRef": {"name": "outbox", "key": "url"}},
    "sinks": [
        {
            "name": "crm",
            "webhook": {
                "url": "https://crm.example.com:8443/hooks/calls",
                "signingSecretRef": {"name": "crm", "key": "hmac"},
            },
        },
        {"name": "bus", "redisStream": {"redisUrlSecretRef": {"name": "bus", "key": "url"}}},
    ],
}


def agent() -> tuple[VoiceAgent, dict[str, Any]]:
    body = voice_agent("va", NS, callEvents=EVENTS)
    body["metadata"]["uid"] = "u-1"
    return VoiceAgent.model_validate(body), body


def test_the_workers_get_each_secret_by_reference_and_the_operator_checks_them() -> None:
    va, _ = agent()
    env = {e["name"]: e for e in worker_env(va, {})}
    assert env[OUTBOX_REDIS_ENV]["valueFrom"]["secretKeyRef"] == {"name": "outbox", "key": "url"}
    assert env[sink_secret_env(0)]["valueFrom"]["secretKeyRef"] == {"name": "crm", "key": "hmac"}
    assert env[sink_secret_env(1)]["valueFrom"]["secretKeyRef"] == {"name": "bus", "key": "url"}
    assert all("value" not in env[n] for n in (OUTBOX_REDIS_ENV, sink_secret_env(0)))
    named = {(r.name, r.key) for r in secret_refs(va.spec)}
    assert {("outbox", "url"), ("crm", "hmac"), ("bus", "url")} <= named


def test_the_conversation_tests_pod_gets_no_call_events_secret() -> None:
    va, body = agent()
    suite = VoiceAgentTest.model_validate(agent_test("smoke", NS))
    run = build_test_run(va, body, [suite], {}, "img:1", "cafe")
    env = {e["name"] for e in run.objects[1]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not {n for n in env if n.startswith("KUBEVOX_CALL_EVENTS_")}


def test_the_workers_may_reach_the_webhook_and_the_redis_servers() -> None:
    va, body = agent()
    secrets = {
        "outbox": {"data": {"url": "cmVkaXM6Ly8xMC4wLjAuNTo2Mzc5LzA="}},  # redis://10.0.0.5:6379/0
        "bus": {"data": {"url": "cmVkaXM6Ly8xMC4wLjAuNjo2Mzc5LzA="}},  # redis://10.0.0.6:6379/0
    }
    [policy] = agent_egress(va, body, {}, secrets, EgressSettings())
    rules = policy["spec"]["egress"]
    ports = {p["port"] for r in rules for p in r.get("ports", [])}
    assert 8443 in ports  # the webhook's
    blocks = {t["ipBlock"]["cidr"] for r in rules for t in r.get("to", []) if "ipBlock" in t}
    assert {"10.0.0.5/32", "10.0.0.6/32"} <= blocks


def test_the_analysis_model_s_key_and_host_reach_the_workers_alone() -> None:
    """spec.analysis.llm: its key by secretKeyRef (checked by the operator like every other),
    its host in the workers' egress policy; the conversation tests' policy does not open it (a
    test is no call: nothing is analysed)."""
    analyst = {
        "provider": "openai",
        "model": "gpt-4.1",
        "baseURL": "https://analysis.example.com:9443/v1",
        "credentials": {"secretKeyRef": {"name": "analysis", "key": "key"}},
    }
    body = voice_agent("va", NS, callEvents=EVENTS, analysis={"llm": analyst, "summary": {}})
    body["metadata"]["uid"] = "u-1"
    va = VoiceAgent.model_validate(body)
    env = {e["name"]: e for e in worker_env(va, {})}
    key = credential_env("analysis")
    assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "analysis", "key": "key"}
    assert ("analysis", "key") in {(r.name, r.key) for r in secret_refs(va.spec)}
    secrets = {"outbox": {"data": {"url": "cmVkaXM6Ly8xMC4wLjAuNTo2Mzc5LzA="}}}
    [policy] = agent_egress(va, body, {}, secrets, EgressSettings())
    assert 9443 in {p["port"] for r in policy["spec"]["egress"] for p in r.get("ports", [])}
    suite = VoiceAgentTest.model_validate(agent_test("smoke", NS))
    tests = network.test_egress_policy(va, body, [suite], {}, [], EgressSettings())
    assert 9443 not in {p["port"] for r in tests["spec"]["egress"] for p in r.get("ports", [])}
