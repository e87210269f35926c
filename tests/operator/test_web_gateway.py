"""An agent's web gateway (spec.web): the objects the builders make for it, and the reconciler
applying them and removing them with the spec. No cluster (tests/system runs it on the node)."""

from __future__ import annotations

from typing import Any

from kubevox_api import VoiceAgent, contract
from kubevox_operator.builders import OperatorDefaults, build_agent_children
from kubevox_operator.builders.agent import agent_selector
from kubevox_operator.builders.network import EgressSettings, agent_egress

from tests.support.objects import voice_agent

from .fake_api import harness
from .test_reconcile_voiceagent import KEY, NS, with_agent

WEB = {
    "livekitURL": "wss://livekit.example.com",
    "allowedOrigins": ["https://www.clinic.example"],
    "auth": {"sharedKeySecretRef": {"name": "web-key", "key": "key"}},
    "ingress": {"host": "call.clinic.example", "className": "nginx", "tlsSecretName": "call-tls"},
}


def agent(**spec: Any) -> tuple[VoiceAgent, dict[str, Any]]:
    body = voice_agent("ava", "ns", **spec)
    body["metadata"]["uid"] = "u-1"
    return VoiceAgent.model_validate(body), body


def children(**spec: Any) -> dict[tuple[str, str], dict[str, Any]]:
    va, body = agent(**spec)
    kids = build_agent_children(va, body, {}, OperatorDefaults(image="img:1"))
    return {(o["kind"], o["metadata"]["name"]): o for o in kids.objects}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_no_web_no_gateway() -> None:
    assert not [k for k in children() if k[1].endswith("-web")]


def test_the_gateway_is_a_restricted_pod_with_no_token_and_only_its_secrets() -> None:
    objs = children(web=WEB)
    dep = objs["Deployment", "ava-web"]
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == list(contract.WEB_ARGS)
    assert container["image"] == "img:1"
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    # The LiveKit credentials and the shared key; none of the providers' keys.
    assert secrets == {
        "LIVEKIT_API_KEY": {"name": "livekit", "key": "apiKey"},
        "LIVEKIT_API_SECRET": {"name": "livekit", "key": "apiSecret"},
        contract.WEB_SHARED_KEY_ENV: {"name": "web-key", "key": "key"},
    }
    assert container["resources"]["limits"]["memory"]
    assert dep["spec"]["replicas"] == 1


def test_the_gateway_s_pods_are_not_the_workers() -> None:
    """The workers' Deployment, PDB, metrics Service and active-call count select by
    kubevox.dev/voiceagent: a gateway pod must match none of them."""
    va, _ = agent(web=WEB)
    objs = children(web=WEB)
    web_pod = objs["Deployment", "ava-web"]["spec"]["template"]["metadata"]["labels"]
    worker_pod = objs["Deployment", "ava"]["spec"]["template"]["metadata"]["labels"]
    assert not selects(agent_selector(va), web_pod)
    assert contract.LABEL_VOICE_AGENT not in web_pod
    web_selector = objs["Deployment", "ava-web"]["spec"]["selector"]["matchLabels"]
    assert selects(web_selector, web_pod)
    assert not selects(web_selector, worker_pod)
    assert objs["Service", "ava-web"]["spec"]["selector"] == web_selector
    # The objects themselves carry the agent's label: a change to one queues the agent.
    assert objs["Service", "ava-web"]["metadata"]["labels"][contract.LABEL_VOICE_AGENT] == "ava"


def test_the_ingress_routes_the_host_to_the_gateway_with_its_certificate() -> None:
    ingress = children(web=WEB)["Ingress", "ava-web"]["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": ["call.clinic.example"], "secretName": "call-tls"}]
    (rule,) = ingress["rules"]
    assert rule["host"] == "call.clinic.example"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": "ava-web",
        "port": {"name": contract.WEB_PORT_NAME},
    }
    no_ingress = {k: v for k, v in WEB.items() if k != "ingress"}
    assert ("Ingress", "ava-web") not in children(web=no_ingress)


def test_a_web_change_rolls_the_gateway_not_the_workers() -> None:
    def hashes(web: dict[str, Any]) -> tuple[str, str]:
        objs = children(web=web)
        return tuple(  # type: ignore[return-value]
            objs[k]["spec"]["template"]["metadata"]["annotations"][contract.CONFIG_HASH_ANNOTATION]
            for k in (("Deployment", "ava"), ("Deployment", "ava-web"))
        )

    worker_a, web_a = hashes(WEB)
    worker_b, web_b = hashes({**WEB, "allowedOrigins": ["https://other.example"]})
    assert worker_a == worker_b
    assert web_a != web_b


def test_the_gateway_may_send_nothing_when_egress_is_policed() -> None:
    va, body = agent(web=WEB)
    policies = {p["metadata"]["name"]: p for p in agent_egress(va, body, {}, {}, EgressSettings())}
    web = policies["ava-web-egress"]["spec"]
    assert web["policyTypes"] == ["Egress"]
    assert web["egress"] == []
    assert web["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web"
    plain, plain_body = agent()
    assert len(agent_egress(plain, plain_body, {}, {}, EgressSettings())) == 1


def _set_web(h: Any, web: dict[str, Any] | None) -> None:
    spec = h.api.objects[KEY]["spec"]
    if web is None:
        spec.pop("web", None)
    else:
        spec["web"] = web
    h.watch("VoiceAgent", NS, "va")
    h.api.writes.clear()


async def test_the_reconciler_applies_the_gateway_and_removes_what_the_spec_drops() -> None:
    h = harness(egress=EgressSettings())
    with_agent(h, web=WEB)
    h.api.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "web-key", "namespace": NS},
            "data": {"key": "c2VjcmV0"},
        }
    )
    await h.agents.reconcile(KEY)
    applied = {(k, n) for _, k, n in h.api.written("apply")}
    assert {("Deployment", "va-web"), ("Service", "va-web"), ("Ingress", "va-web")} <= applied
    assert ("NetworkPolicy", "va-web-egress") in applied
    for kind in ("Deployment", "Service", "Ingress"):
        h.watch(kind, NS, "va-web")

    # The Ingress alone goes when spec.web.ingress does.
    _set_web(h, {k: v for k, v in WEB.items() if k != "ingress"})
    await h.agents.reconcile(KEY)
    assert h.api.written("delete") == [("delete", "Ingress", "va-web")]
    assert h.api.live("Deployment", NS, "va-web") is not None

    # Everything of the gateway goes with spec.web, the Deployment last; the workers stay.
    _set_web(h, None)
    await h.agents.reconcile(KEY)
    assert h.api.written("delete") == [
        ("delete", "NetworkPolicy", "va-web-egress"),
        ("delete", "Service", "va-web"),
        ("delete", "Deployment", "va-web"),
    ]
    assert h.api.live("Deployment", NS, "va") is not None
    h.api.writes.clear()
    await h.agents.reconcile(KEY)
    assert h.api.written("delete") == []


async def test_a_namesake_gateway_the_agent_does_not_own_is_left_alone() -> None:
    h = harness()
    with_agent(h)
    h.api.seed(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "va-web", "namespace": NS, "uid": "someone-else"},
            "spec": {},
        }
    )
    h.watch("Deployment", NS, "va-web")
    await h.agents.reconcile(KEY)
    assert h.api.written("delete") == []
    assert h.api.live("Deployment", NS, "va-web") is not None
