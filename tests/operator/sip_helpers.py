"""The LiveKit side of the telephony tests (test_sip, test_operator_requests, test_waiting): a
VoiceAgent with a phone line, the Secrets it reads, and the SIP trunks and dispatch rules a real
livekit-server holds for it."""

from __future__ import annotations

import asyncio
from typing import Any

from kubevox_devenv.livekit import LiveKitServer
from kubevox_operator.sip import Owner
from livekit import api

from tests.support.kube import Kubectl, condition
from tests.support.objects import secrets, voice_agent

Obj = dict[str, Any]


PASSWORD = "s3cr3t-SIP-pa55"


def lk_call(server: LiveKitServer, fn: Any) -> Any:
    async def run() -> Any:
        async with api.LiveKitAPI(server.url, server.api_key, server.api_secret) as lk:
            return await fn(lk)

    return asyncio.run(run())


def lk_trunks(server: LiveKitServer, ns: str, name: str) -> list[api.SIPInboundTrunkInfo]:
    resp = lk_call(server, lambda lk: lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest()))
    return [t for t in resp.items if Owner(ns, name, "").owns(t.metadata)]


def lk_rules(server: LiveKitServer, ns: str, name: str) -> list[api.SIPDispatchRuleInfo]:
    resp = lk_call(server, lambda lk: lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest()))
    return [r for r in resp.items if Owner(ns, name, "").owns(r.metadata)]


def cluster_secrets(ns: str, server: LiveKitServer, auth: bool = True) -> list[Obj]:
    out = [s for s in secrets(ns) if s["metadata"]["name"] != "livekit"]
    out.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "livekit", "namespace": ns},
            "stringData": {"apiKey": server.api_key, "apiSecret": server.api_secret},
        }
    )
    if auth:
        out.append(sip_secret(ns))
    return out


def sip_secret(ns: str, name: str = "sip-auth") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"user": "carrier", "pass": PASSWORD},
    }


def phone_agent(
    name: str, ns: str, server: LiveKitServer | str, numbers: list[str], **sip: Any
) -> Obj:
    url = server if isinstance(server, str) else server.url
    body = voice_agent(
        name,
        ns,
        agentName=f"{name}-agent",
        livekit={"url": url, "credentialsSecretRef": {"name": "livekit"}},
        telephony={
            "sip": {
                "phoneNumbers": numbers,
                "allowedAddresses": ["127.0.0.1"],
                "auth": {"secretRef": "sip-auth", "usernameKey": "user", "passwordKey": "pass"},
                "roomPrefix": f"{name}-call-",
                **sip,
            }
        },
    )
    return body


def telephony(k: Kubectl, name: str, ns: str) -> Obj:
    return condition(k.get("voiceagent", name, ns), "TelephonyReady")


def sip_ready(k: Kubectl, name: str, ns: str) -> Obj | None:
    va = k.get("voiceagent", name, ns)
    st = (va or {}).get("status", {})
    if telephony(k, name, ns).get("status") == "True" and st.get("sipDispatchRuleId"):
        return va
    return None
