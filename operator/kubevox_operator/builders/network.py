"""Default-deny egress NetworkPolicies for a VoiceAgent's workers and conversation-test Jobs and a
KnowledgeBase's ingestion Jobs: only DNS and the endpoints the specs name
(docs/security/privilege.md); none at all for an agent's web gateway.

A NetworkPolicy cannot name a host, so each endpoint becomes peers by what its host is:

* an IP address: that address alone (never loopback or link-local, the metadata address);
* a cluster name (no dot, ``*.svc``, ``*.svc.<domain>``, ``*.cluster.local``): pods of the
  namespace it names (``<service>.<namespace>.svc``; a dotless name: the owner's namespace) on
  the URL's port — the Service's targetPort must equal its port, as a NetworkPolicy sees pods;
* any other name (a public host): every address but the private, loopback, link-local and CGNAT
  ranges, on the URL's port.

What the spec cannot name (the API server's address, a proxy) comes from the operator's
configuration (:class:`EgressSettings`). Ingress is left alone (Prometheus scrapes the workers).
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kubevox_api import KnowledgeBase, VoiceAgent, contract
from kubevox_api.voiceagenttest import VoiceAgentTest

from .agent import agent_selector
from .agent_test import test_selector
from .common import Obj, agent_labels, agent_name, agent_namespace, child_name, labels, metadata
from .recording import expiry_name, expiry_selector
from .web import web_policy_name, web_selector

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "redis": 6379, "rediss": 6379}
PRIVATE_V4 = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",  # CGNAT
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, the cloud metadata address
    "0.0.0.0/8",
)
PRIVATE_V6 = ("fc00::/7", "fe80::/10", "::1/128")
"""(IPv4-mapped ::ffff:0:0/96 is refused by the API server in an except of ::/0: pods send
IPv4 packets for those anyway, which the IPv4 block covers.)"""
PUBLIC_PEERS: list[Obj] = [
    {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_V4)}},
    {"ipBlock": {"cidr": "::/0", "except": list(PRIVATE_V6)}},
]
PROVIDER_HOSTS = {
    "deepgram": "https://api.deepgram.com",
    "openai": "https://api.openai.com",
    "cartesia": "https://api.cartesia.ai",
}
"""Cloud providers' default endpoints (public: port 443 to public addresses)."""
LIVEKIT_MEDIA_PORTS: tuple[tuple[str, int, int | None], ...] = (
    ("TCP", 7881, None),  # WebRTC over TCP
    ("UDP", 3478, None),  # TURN/STUN
    ("UDP", 50000, 60000),  # WebRTC media (LiveKit's default rtc port range)
    ("TCP", 443, None),  # TURN over TLS
    ("TCP", 5349, None),
)
"""A worker is a WebRTC participant: media flows to the LiveKit server's media ports, not only
its signalling URL (LiveKit's defaults; other ranges need EgressSettings.extra)."""
API_SERVER_PORTS = (443, 6443)


@dataclass(frozen=True)
class EgressSettings:
    """The operator's part of the egress policies (flags --network-policies and --egress-*)."""

    api_server_cidrs: tuple[str, ...] = ()
    """Where workers reach the Kubernetes API (to annotate their pod). Empty: ports 443 and
    6443 to any address (a cluster's API endpoint address differs per cluster)."""
    extra: tuple[Obj, ...] = field(default_factory=tuple)
    """NetworkPolicyEgressRules added to every policy (a proxy, an internal source)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


def endpoint(url: str) -> Endpoint | None:
    """Host and port of a URL (its scheme's default port); None when it has no host. Never
    keeps the userinfo (a Redis URL's password)."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return Endpoint(parts.hostname.lower().rstrip("."), port)


def _in_cluster(host: str) -> bool:
    return "." not in host or host.endswith((".svc", ".cluster.local")) or ".svc." in host


def peers(host: str, namespace: str) -> list[Obj] | None:
    """Where ``host`` may be, as NetworkPolicy peers; None: nowhere allowed (loopback,
    link-local: the cloud metadata address is never an endpoint)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
            return None
        return [{"ipBlock": {"cidr": f"{ip}/{ip.max_prefixlen}"}}]
    if _in_cluster(host):
        labels_ = host.split(".")
        ns = labels_[1] if len(labels_) > 1 else namespace
        return [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "podSelector": {},
            }
        ]
    return public_peers()


def public_peers() -> list[Obj]:
    return [
        {"ipBlock": {**p["ipBlock"], "except": list(p["ipBlock"]["except"])}} for p in PUBLIC_PEERS
    ]


def _port(port: int, protocol: str = "TCP", end: int | None = None) -> Obj:
    out: Obj = {"protocol": protocol, "port": port}
    if end is not None:
        out["endPort"] = end
    return out


def rule_to(url: str | None, namespace: str, *, public_only: bool = False) -> Obj | None:
    """The egress rule reaching ``url``'s host and port (None: no URL, or nowhere allowed)."""
    ep = endpoint(url) if url else None
    if ep is None:
        return None
    to = public_peers() if public_only else peers(ep.host, namespace)
    return None if to is None else {"to": to, "ports": [_port(ep.port)]}


def dns_rule() -> Obj:
    """Port 53 anywhere: cluster DNS lives at different addresses (kube-dns pods, NodeLocal
    DNSCache's link-local address)."""
    return {"ports": [_port(53, "UDP"), _port(53, "TCP")]}


def api_server_rule(settings: EgressSettings) -> Obj:
    ports = [_port(p) for p in API_SERVER_PORTS]
    if not settings.api_server_cidrs:
        return {"ports": ports}
    return {"to": [{"ipBlock": {"cidr": c}} for c in settings.api_server_cidrs], "ports": ports}


def livekit_rules(url: str, namespace: str) -> list[Obj]:
    signal = rule_to(url, namespace)
    if signal is None:
        return []
    media = [_port(port, proto, end) for proto, port, end in LIVEKIT_MEDIA_PORTS]
    return [signal, {"to": signal["to"], "ports": media}]


def provider_url(provider: Any) -> str | None:
    """The endpoint a provider's client calls: its baseURL, else the cloud provider's own
    (None for the offline providers bundled in the image)."""
    base = getattr(provider, "base_url", None)
    if base:
        return str(base)
    return PROVIDER_HOSTS.get(str(getattr(provider, "provider", "")))


def secret_value(secret: Obj | None, key: str) -> str | None:
    """A Secret key's value (decoded), only to find a Redis URL's host: never stored."""
    raw = ((secret or {}).get("data") or {}).get(key)
    if raw is None:
        return None
    return base64.b64decode(raw).decode("utf-8", "replace").strip()


def _policy(
    name: str,
    namespace: str,
    owner: Obj,
    labels_: dict[str, str],
    selector: dict[str, str],
    rules: list[Obj | None],
) -> Obj:
    egress: list[Obj] = []
    for r in rules:
        if r is not None and r not in egress:
            egress.append(r)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, namespace, owner, labels_),
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Egress"],
            "egress": egress,
        },
    }


def agent_egress_policy(
    agent: VoiceAgent,
    owner: Obj,
    knowledge_bases: dict[str, KnowledgeBase],
    redis_urls: list[str],
    settings: EgressSettings,
) -> Obj:
    """The workers' policy: DNS, the API server, LiveKit, the providers, each knowledge base's
    Redis (``redis_urls``, read from their Secrets) and embeddings endpoint."""
    name, ns = str(agent.metadata["name"]), str(agent.metadata.get("namespace", "default"))
    spec = agent.spec
    providers: list[Any] = [spec.stt, spec.llm, *spec.llm.fallbacks, spec.tts]
    providers += [kb.spec.embedding for kb in knowledge_bases.values()]
    if spec.analysis_llm is not None:
        providers.append(spec.analysis_llm)
    rules: list[Obj | None] = [dns_rule(), api_server_rule(settings)]
    rules += livekit_rules(spec.livekit.url, ns)
    rules += [rule_to(provider_url(p), ns) for p in providers]
    rules += [rule_to(u, ns) for u in redis_urls]
    rules += list(settings.extra)
    return _policy(
        child_name(name, "-worker-egress"),
        ns,
        owner,
        labels("worker", name, {contract.LABEL_VOICE_AGENT: name}),
        agent_selector(agent),
        rules,
    )


def test_egress_policy(
    agent: VoiceAgent,
    owner: Obj,
    suites: list[VoiceAgentTest],
    knowledge_bases: dict[str, KnowledgeBase],
    redis_urls: list[str],
    settings: EgressSettings,
) -> Obj:
    """The conversation tests' policy: DNS, the language models (the agent's and the judges'),
    each knowledge base's Redis and embeddings endpoint. No LiveKit, no speech providers, no
    API server: a text-mode run needs none of them."""
    ns = agent_namespace(agent)
    endpoints: list[Any] = [agent.spec.llm, *agent.spec.llm.fallbacks]
    endpoints += [s.spec.judge for s in suites if s.spec.judge is not None]
    endpoints += [kb.spec.embedding for kb in knowledge_bases.values()]
    rules: list[Obj | None] = [dns_rule()]
    rules += [rule_to(provider_url(p), ns) for p in endpoints]
    rules += [rule_to(u, ns) for u in redis_urls]
    rules += list(settings.extra)
    return _policy(
        test_policy_name(agent),
        ns,
        owner,
        agent_labels(agent, "test"),
        test_selector(agent),
        rules,
    )


def recordings_egress_policy(agent: VoiceAgent, owner: Obj, settings: EgressSettings) -> Obj:
    """The recordings expiry's policy: DNS and the storage, nothing else."""
    assert agent.spec.recording is not None
    ns = agent_namespace(agent)
    rules = [dns_rule(), rule_to(agent.spec.recording.storage.endpoint, ns), *settings.extra]
    return _policy(
        recordings_policy_name(agent),
        ns,
        owner,
        agent_labels(agent, "recordings"),
        expiry_selector(agent),
        rules,
    )


def recordings_policy_name(agent: VoiceAgent) -> str:
    return child_name(expiry_name(agent), "-egress")


def test_policy_name(agent: VoiceAgent) -> str:
    return child_name(agent_name(agent), "-test-egress")


def web_egress_policy(agent: VoiceAgent, owner: Obj) -> Obj:
    """The web gateway's policy: no egress at all. It mints tokens in its own process and
    calls nothing (not even DNS)."""
    return _policy(
        web_policy_name(agent),
        agent_namespace(agent),
        owner,
        agent_labels(agent, "web"),
        web_selector(agent),
        [],
    )


def ingest_selector(kb: KnowledgeBase) -> dict[str, str]:
    return {
        contract.LABEL_COMPONENT: "ingest",
        contract.LABEL_KNOWLEDGE_BASE: str(kb.metadata["name"]),
    }


def ingest_egress_policy(
    kb: KnowledgeBase, owner: Obj, redis_url: str | None, settings: EgressSettings
) -> Obj:
    """The ingestion Jobs' policy: DNS, Redis, the embeddings endpoint, and the URL sources —
    public addresses only (and ports 80 and 443, which redirects go to): an internal source
    needs EgressSettings.extra, as it needs the operator's SSRF allow list."""
    name, ns = str(kb.metadata["name"]), str(kb.metadata.get("namespace", "default"))
    rules: list[Obj | None] = [dns_rule(), rule_to(redis_url, ns)]
    rules.append(rule_to(provider_url(kb.spec.embedding), ns))
    urls = [s.url for s in kb.spec.sources if s.url]
    if urls:
        rules += [rule_to(u, ns, public_only=True) for u in urls]
        rules.append({"to": public_peers(), "ports": [_port(80), _port(443)]})
    rules += list(settings.extra)
    return _policy(
        child_name(name, "-ingest-egress"),
        ns,
        owner,
        labels("ingest", name, {contract.LABEL_KNOWLEDGE_BASE: name}),
        ingest_selector(kb),
        rules,
    )


def agent_egress(
    agent: VoiceAgent,
    owner: Obj,
    knowledge_bases: dict[str, KnowledgeBase],
    secrets: dict[str, Obj | None],
    settings: EgressSettings | None,
    suites: list[VoiceAgentTest] | None = None,
) -> list[Obj]:
    """The agent's egress policies (its workers', its web gateway's, its conversation tests'),
    or none when the operator makes none (``settings`` None).
    ``secrets``: the Secrets read for the agent, by name (the knowledge bases' Redis URLs)."""
    if settings is None:
        return []
    refs = [kb.spec.store.redis_url_secret_ref for kb in knowledge_bases.values()]
    urls = [u for r in refs if (u := secret_value(secrets.get(r.name), r.key))]
    # The workers also reach their call events' outbox and sinks (spec.callEvents).
    events = agent.spec.call_events
    sink_urls: list[str] = []
    if events is not None:
        stores = [events.outbox.redis_url_secret_ref]
        stores += [s.redis_stream.redis_url_secret_ref for s in events.sinks if s.redis_stream]
        sink_urls += [u for r in stores if (u := secret_value(secrets.get(r.name), r.key))]
        sink_urls += [s.webhook.url for s in events.sinks if s.webhook is not None]
    if agent.spec.recording is not None:  # the workers upload the recordings
        sink_urls.append(agent.spec.recording.storage.endpoint)
    out = [agent_egress_policy(agent, owner, knowledge_bases, urls + sink_urls, settings)]
    if agent.spec.web is not None:
        out.append(web_egress_policy(agent, owner))
    if agent.spec.recording is not None:
        out.append(recordings_egress_policy(agent, owner, settings))
    if suites:
        out.append(test_egress_policy(agent, owner, suites, knowledge_bases, urls, settings))
    return out


def knowledge_egress(
    kb: KnowledgeBase, owner: Obj, redis_secret: Obj | None, settings: EgressSettings | None
) -> list[Obj]:
    if settings is None:
        return []
    url = secret_value(redis_secret, kb.spec.store.redis_url_secret_ref.key)
    return [ingest_egress_policy(kb, owner, url, settings)]
