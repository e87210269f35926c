"""Pure: the egress NetworkPolicies, the agent policy (images, ServiceAccounts) and the worker
RoleBinding that never binds a ServiceAccount the operator did not create. No cluster."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubevox_api import KnowledgeBase, VoiceAgent
from kubevox_operator.builders import OperatorDefaults, build_agent_children
from kubevox_operator.builders.network import (
    EgressSettings,
    agent_egress,
    endpoint,
    knowledge_egress,
    peers,
)
from kubevox_operator.policy import AgentPolicy, agent_notices, agent_policy_problems

from tests.support.objects import knowledge_base, voice_agent

OWNER = {"apiVersion": "kubevox.dev/v1alpha1", "kind": "X", "metadata": {"name": "o", "uid": "u"}}
PUBLIC = [
    {
        "ipBlock": {
            "cidr": "0.0.0.0/0",
            "except": [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "100.64.0.0/10",
                "127.0.0.0/8",
                "169.254.0.0/16",
                "0.0.0.0/8",
            ],
        }
    },
    {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10", "::1/128"]}},
]


def _agent(**spec: Any) -> tuple[VoiceAgent, dict[str, Any]]:
    body = voice_agent("ava", "team-a", **spec)
    body["metadata"]["uid"] = "u-1"
    return VoiceAgent.model_validate(body), body


def _secret(value: str) -> dict[str, Any]:
    return {"data": {"url": base64.b64encode(value.encode()).decode()}}


def _tcp(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


# --- endpoints and peers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("wss://lk.example.com", "lk.example.com", 443),
        ("ws://livekit:7880", "livekit", 7880),
        (
            "redis://:p%40ss@redis.data.svc.cluster.local:6380/0",
            "redis.data.svc.cluster.local",
            6380,
        ),
        ("rediss://user:pw@10.1.2.3", "10.1.2.3", 6379),
        ("http://[fd00::1]:8080/v1", "fd00::1", 8080),
    ],
)
def test_endpoint_keeps_host_and_port_never_credentials(url: str, host: str, port: int) -> None:
    ep = endpoint(url)
    assert ep is not None
    assert (ep.host, ep.port) == (host, port)
    assert "p@ss" not in repr(ep)
    assert "pw" not in repr(ep)


def test_peers_by_kind_of_host() -> None:
    same_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}}
    assert peers("livekit", "team-a") == [{**same_ns, "podSelector": {}}]
    assert peers("redis.data.svc", "team-a") == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}},
            "podSelector": {},
        }
    ]
    assert peers("redis.data.svc.cluster.local", "team-a") == peers("redis.data.svc", "x")
    assert peers("203.0.113.7", "team-a") == [{"ipBlock": {"cidr": "203.0.113.7/32"}}]
    assert peers("api.openai.com", "team-a") == PUBLIC
    # The cloud metadata address and loopback are never an endpoint.
    assert peers("169.254.169.254", "team-a") is None
    assert peers("127.0.0.1", "team-a") is None


# --- the workers' policy ---------------------------------------------------------------------


def test_agent_policy_allows_dns_api_server_livekit_providers_and_redis_only() -> None:
    agent, body = _agent(
        livekit={"url": "wss://lk.example.com", "credentialsSecretRef": {"name": "lk"}}
    )
    kb_body = knowledge_base("docs", "team-a")
    kb_body["metadata"]["uid"] = "u-2"
    kbs = {"docs": KnowledgeBase.model_validate(kb_body)}
    secrets = {"redis": _secret("redis://:hunter2@redis.data.svc:6379/0")}
    (policy,) = agent_egress(agent, body, kbs, secrets, EgressSettings())
    assert policy["kind"] == "NetworkPolicy"
    assert policy["metadata"]["name"] == "ava-worker-egress"
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Egress"]  # ingress (metrics scraping) untouched
    assert spec["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "kubevox", "kubevox.dev/voiceagent": "ava"}
    }
    rules = spec["egress"]
    assert {"ports": [{"protocol": "UDP", "port": 53}, _tcp(53)]} in rules
    assert {"ports": [_tcp(443), _tcp(6443)]} in rules  # API server: no CIDR configured
    # LiveKit, public: signalling on 443 and WebRTC media, to public addresses only.
    assert {"to": PUBLIC, "ports": [_tcp(443)]} in rules
    media = next(
        r for r in rules if {"protocol": "UDP", "port": 50000, "endPort": 60000} in r["ports"]
    )
    assert media["to"] == PUBLIC
    # Redis from the Secret: its namespace's pods on its port; the password nowhere.
    redis = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}},
                "podSelector": {},
            }
        ],
        "ports": [_tcp(6379)],
    }
    assert redis in rules
    assert "hunter2" not in str(policy)
    # Nothing else: every rule is one of the above (providers are public 443, deduplicated).
    assert len(rules) == 5, rules


def test_agent_policy_follows_provider_base_urls_and_operator_settings() -> None:
    agent, body = _agent(
        llm={"provider": "openai", "model": "m", "baseURL": "http://vllm.models.svc:8000/v1"},
    )
    settings = EgressSettings(
        api_server_cidrs=("10.0.0.1/32",),
        extra=({"to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}], "ports": [_tcp(3128)]},),
    )
    (policy,) = agent_egress(agent, body, {}, {}, settings)
    rules = policy["spec"]["egress"]
    assert {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "models"}},
                "podSelector": {},
            }
        ],
        "ports": [_tcp(8000)],
    } in rules
    assert {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}], "ports": [_tcp(443), _tcp(6443)]} in rules
    assert settings.extra[0] in rules
    # In-cluster LiveKit (ws://livekit:7880): the agent's own namespace.
    own = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}},
            "podSelector": {},
        }
    ]
    assert {"to": own, "ports": [_tcp(7880)]} in rules


def test_no_policy_when_the_operator_makes_none() -> None:
    agent, body = _agent()
    assert agent_egress(agent, body, {}, {}, None) == []


# --- the ingestion Jobs' policy --------------------------------------------------------------


def test_ingest_policy_allows_url_sources_on_public_addresses_only() -> None:
    body = knowledge_base("docs", "team-a")
    body["metadata"]["uid"] = "u-2"
    body["spec"]["sources"] = [
        {"name": "site", "url": "https://docs.example.com:8443/faq"},
        {"name": "inside", "url": "http://wiki.intranet.svc:8080/"},
    ]
    kb = KnowledgeBase.model_validate(body)
    (policy,) = knowledge_egress(kb, body, _secret("redis://redis:6379"), EgressSettings())
    assert policy["metadata"]["name"] == "docs-ingest-egress"
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/component": "ingest",
        "kubevox.dev/knowledgebase": "docs",
    }
    rules = policy["spec"]["egress"]
    assert {"to": PUBLIC, "ports": [_tcp(8443)]} in rules
    assert {"to": PUBLIC, "ports": [_tcp(8080)]} in rules  # the internal host: public only
    assert {"to": PUBLIC, "ports": [_tcp(80), _tcp(443)]} in rules  # redirects
    assert not any(
        "namespaceSelector" in peer
        and peer["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name")
        == "intranet"
        for r in rules
        for peer in r.get("to", [])
    )
    # No API server: ingestion pods have no token.
    assert {"ports": [_tcp(443), _tcp(6443)]} not in rules


def test_ingest_pods_match_the_policy_selector() -> None:
    from kubevox_operator.builders import build_ingest_plan

    body = knowledge_base("docs", "team-a")
    body["metadata"]["uid"] = "u-2"
    kb = KnowledgeBase.model_validate(body)
    plan = build_ingest_plan(kb, body, "abc", "r1", "img:1")
    (policy,) = knowledge_egress(kb, body, None, EgressSettings())
    pod_labels = plan.job["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()


# --- who may choose images and ServiceAccounts -----------------------------------------------


def test_image_outside_the_allowed_prefixes_is_refused_naming_the_field() -> None:
    policy = AgentPolicy(allowed_image_prefixes=("registry.example.com/voice/",))
    agent, _ = _agent(image="docker.io/evil/miner:latest")
    (problem,) = agent_policy_problems(agent, policy, "ghcr.io/kubevox/agent-runtime:0.1.0")
    assert problem.reason == "ImageNotAllowed"
    assert "spec.image" in problem.message
    assert "docker.io/evil/miner:latest" in problem.message
    ok, _ = _agent(image="registry.example.com/voice/agent:2")
    assert agent_policy_problems(ok, policy, "x") == []
    default, _ = _agent(image="ghcr.io/kubevox/agent-runtime:0.1.0")
    assert agent_policy_problems(default, policy, "ghcr.io/kubevox/agent-runtime:0.1.0") == []
    assert agent_policy_problems(agent, AgentPolicy(), "x") == []  # no restriction configured


def test_foreign_service_account_refused_or_reported_never_bound() -> None:
    agent, body = _agent(pod={"serviceAccountName": "cluster-admin-sa"})
    (refused,) = agent_policy_problems(
        agent, AgentPolicy(allow_foreign_service_accounts=False), "x"
    )
    assert refused.reason == "ServiceAccountNotAllowed"
    assert "spec.pod.serviceAccountName" in refused.message
    assert agent_policy_problems(agent, AgentPolicy(), "x") == []
    (notice,) = agent_notices(agent)
    assert notice.reason == "WorkerRoleNotBound"
    kids = {o["kind"]: o for o in build_agent_children(agent, body, {}, OperatorDefaults()).objects}
    assert "ServiceAccount" not in kids
    # The binding exists (so that applying it takes back an older operator's subject) but
    # binds no one.
    assert kids["RoleBinding"]["subjects"] == []
    assert (
        kids["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == "cluster-admin-sa"
    )


def test_the_operator_created_service_account_is_bound() -> None:
    agent, body = _agent()
    kids = {o["kind"]: o for o in build_agent_children(agent, body, {}, OperatorDefaults()).objects}
    assert kids["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "ava-worker", "namespace": "team-a"}
    ]
    assert agent_notices(agent) == []
