"""Declarative SIP: a VoiceAgent's LiveKit inbound trunk and dispatch rule, against a real
livekit-server (with Redis, which its SIP API needs) and the operator as a real process."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubevox_api import VoiceAgent
from kubevox_api.contract import SIP_FINALIZER
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.procs import free_port
from kubevox_operator.sip import (
    Owner,
    desired_rule,
    desired_trunk,
    plan,
    rule_in_step,
    trunk_in_step,
)
from kubevox_operator.status import AgentObservation, Problem, TelephonyObservation, agent_status
from livekit import api

from tests.support.kube import Kubectl, condition, wait_for
from tests.support.objects import voice_agent
from tests.support.operator_process import SA_USER, OperatorProcess, audit_writes, wait_quiet

from .conftest import RESYNC_SECONDS
from .sip_helpers import (
    PASSWORD,
    cluster_secrets,
    lk_call,
    lk_rules,
    lk_trunks,
    phone_agent,
    sip_ready,
    sip_secret,
    telephony,
)

Obj = dict[str, Any]


# --- pure: the wanted objects -------------------------------------------------------------------


def sip_agent(
    name: str = "clinic", ns: str = "ns", agent: str | None = None, **sip: Any
) -> VoiceAgent:
    extra = {"agentName": agent} if agent else {}
    body = voice_agent(name, ns, telephony={"sip": {"phoneNumbers": ["+15550100"], **sip}}, **extra)
    body["metadata"]["uid"] = "u-1"
    return VoiceAgent.model_validate(body)


def test_desired_trunk_and_rule_follow_the_spec() -> None:
    agent = sip_agent(
        agent="front-desk",
        allowedAddresses=["203.0.113.0/24"],
        auth={"secretRef": "sip"},
        roomPrefix="clinic-",
    )
    assert agent.spec.telephony is not None
    assert agent.spec.telephony.sip is not None
    sip = agent.spec.telephony.sip
    owner = Owner("ns", "clinic", "u-1")
    trunk = desired_trunk(owner, sip, ("user", PASSWORD))
    assert list(trunk.numbers) == ["+15550100"]
    assert list(trunk.allowed_addresses) == ["203.0.113.0/24"]
    assert (trunk.auth_username, trunk.auth_password) == ("user", PASSWORD)
    assert trunk.name == "kubevox/ns/clinic"
    assert json.loads(trunk.metadata) == {
        "managedBy": "kubevox-operator",
        "namespace": "ns",
        "name": "clinic",
        "uid": "u-1",
    }
    rule = desired_rule(owner, sip, agent.effective_agent_name, "ST_1")
    assert rule.rule.dispatch_rule_individual.room_prefix == "clinic-"
    assert [a.agent_name for a in rule.room_config.agents] == ["front-desk"]
    assert list(rule.trunk_ids) == ["ST_1"]


def test_in_step_ignores_order_and_server_fields_but_sees_changes() -> None:
    owner = Owner("ns", "clinic", "u-1")
    sip = sip_agent(phoneNumbers=["+15550100", "+15550101"], allowedAddresses=["10.0.0.1"])
    assert sip.spec.telephony
    assert sip.spec.telephony.sip
    want = desired_trunk(owner, sip.spec.telephony.sip, None)
    live = api.SIPInboundTrunkInfo()
    live.CopyFrom(want)
    live.sip_trunk_id = "ST_1"
    live.numbers[:] = ["+15550101", "+15550100"]
    assert trunk_in_step(live, want)
    live.auth_password = "changed"
    assert not trunk_in_step(live, want)

    rule = desired_rule(owner, sip.spec.telephony.sip, "clinic", "ST_1")
    live_rule = api.SIPDispatchRuleInfo()
    live_rule.CopyFrom(rule)
    live_rule.sip_dispatch_rule_id = "SDR_1"
    assert rule_in_step(live_rule, rule)
    live_rule.room_config.agents[0].agent_name = "someone-else"
    assert not rule_in_step(live_rule, rule)


def test_plan_finds_its_own_objects_by_metadata_only() -> None:
    mine = Owner("ns", "clinic", "u-1")
    older = Owner("ns", "clinic", "u-0")  # a deleted namesake: adopted, not duplicated
    other = Owner("ns", "other", "u-2")
    live = [
        api.SIPInboundTrunkInfo(sip_trunk_id="ST_other", metadata=other.metadata()),
        api.SIPInboundTrunkInfo(sip_trunk_id="ST_hand", metadata="not json"),
        api.SIPInboundTrunkInfo(sip_trunk_id="ST_a", metadata=older.metadata()),
        api.SIPInboundTrunkInfo(sip_trunk_id="ST_b", metadata=mine.metadata()),
    ]
    p = plan(mine, live, lambda t: t.sip_trunk_id, "ST_b")
    assert p.keep is not None
    assert p.keep.sip_trunk_id == "ST_b"
    assert [t.sip_trunk_id for t in p.extra] == ["ST_a"]
    assert plan(mine, live[:2], lambda t: t.sip_trunk_id, None).keep is None


def test_status_reports_telephony_without_touching_readiness() -> None:
    base = AgentObservation(generation=1, previous={}, agent_name="a", config_hash="h")
    assert "sipTrunkId" not in agent_status(base)
    assert all(c["type"] != "TelephonyReady" for c in agent_status(base)["conditions"])
    base.telephony = TelephonyObservation(
        "ST_1", None, Problem("SecretMissing", "Secret ns/sip not found")
    )
    st = agent_status(base)
    tel = next(c for c in st["conditions"] if c["type"] == "TelephonyReady")
    assert (tel["status"], tel["reason"]) == ("False", "SecretMissing")
    deg = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert deg["status"] == "True"
    assert "ns/sip" in deg["message"]
    assert st["sipTrunkId"] == "ST_1"


# --- against a real LiveKit server and the operator ---------------------------------------------


@pytest.mark.cluster
def test_trunk_and_rule_created_updated_repaired_and_removed(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    ns = namespace
    kubectl.apply(cluster_secrets(ns, livekit))
    kubectl.apply(phone_agent("clinic", ns, livekit, ["+15550100", "+15550101"]))
    va = wait_for("trunk and rule in status", lambda: sip_ready(kubectl, "clinic", ns), 40)
    assert SIP_FINALIZER in va["metadata"]["finalizers"]
    [trunk] = lk_trunks(livekit, ns, "clinic")
    [rule] = lk_rules(livekit, ns, "clinic")
    assert va["status"]["sipTrunkId"] == trunk.sip_trunk_id
    assert va["status"]["sipDispatchRuleId"] == rule.sip_dispatch_rule_id
    assert sorted(trunk.numbers) == ["+15550100", "+15550101"]
    assert list(trunk.allowed_addresses) == ["127.0.0.1"]
    assert (trunk.auth_username, trunk.auth_password) == ("carrier", PASSWORD)
    assert rule.rule.dispatch_rule_individual.room_prefix == "clinic-call-"
    assert [a.agent_name for a in rule.room_config.agents] == ["clinic-agent"]
    assert list(rule.trunk_ids) == [trunk.sip_trunk_id]
    # The password reaches LiveKit and nothing else the operator writes.
    assert PASSWORD not in json.dumps(va)
    assert PASSWORD not in kubectl("get", "events", "-n", ns, "-o", "json")

    # New numbers: the same trunk is updated in place.
    kubectl.apply(phone_agent("clinic", ns, livekit, ["+15550102"]))
    wait_for(
        "trunk numbers updated",
        lambda: [list(t.numbers) for t in lk_trunks(livekit, ns, "clinic")] == [["+15550102"]],
        30,
    )
    assert [t.sip_trunk_id for t in lk_trunks(livekit, ns, "clinic")] == [trunk.sip_trunk_id]

    # A rule deleted behind the operator's back comes back (LiveKit has no watch: the resync).
    lk_call(
        livekit,
        lambda lk: lk.sip.delete_dispatch_rule(
            api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
        ),
    )
    [new_rule] = wait_for("rule recreated", lambda: lk_rules(livekit, ns, "clinic"), 30)
    assert new_rule.sip_dispatch_rule_id != rule.sip_dispatch_rule_id
    assert list(new_rule.trunk_ids) == [trunk.sip_trunk_id]
    wait_for(
        "status names the new rule",
        lambda: (
            (kubectl.get("voiceagent", "clinic", ns) or {})["status"].get("sipDispatchRuleId")
            == new_rule.sip_dispatch_rule_id
        ),
    )
    # A trunk edited behind its back is put back.
    lk_call(
        livekit,
        lambda lk: lk.sip.update_inbound_trunk_fields(trunk.sip_trunk_id, numbers=["+15550199"]),
    )
    wait_for(
        "trunk repaired",
        lambda: [list(t.numbers) for t in lk_trunks(livekit, ns, "clinic")] == [["+15550102"]],
        30,
    )

    # Deletion: both go, then the finalizer is released and the VoiceAgent is gone.
    kubectl("delete", "voiceagent", "clinic", "-n", ns, "--wait=false")
    wait_for("VoiceAgent gone", lambda: kubectl.get("voiceagent", "clinic", ns) is None, 30)
    assert lk_trunks(livekit, ns, "clinic") == []
    assert lk_rules(livekit, ns, "clinic") == []
    assert PASSWORD not in json.dumps(operator.log_records())


@pytest.mark.cluster
def test_missing_auth_secret_is_reported_then_fixed(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    ns = namespace
    kubectl.apply(cluster_secrets(ns, livekit, auth=False))
    kubectl.apply(phone_agent("desk", ns, livekit, ["+15550200"]))
    cond = wait_for(
        "TelephonyReady False",
        lambda: (c := telephony(kubectl, "desk", ns)).get("status") == "False" and c,
    )
    assert cond["reason"] == "SecretMissing"
    assert f"{ns}/sip-auth" in cond["message"]
    assert "spec.telephony.sip.auth.secretRef" in cond["message"]
    assert lk_trunks(livekit, ns, "desk") == []
    # The workers still answer browser callers: Degraded, not un-Ready for SIP alone.
    deg = condition(kubectl.get("voiceagent", "desk", ns), "Degraded")
    assert deg["status"] == "True"
    assert "sip-auth" in deg["message"]

    kubectl.apply(sip_secret(ns))  # Secrets are not watched: the backoff retry finds it
    wait_for("telephony ready", lambda: sip_ready(kubectl, "desk", ns), 30)
    assert len(lk_trunks(livekit, ns, "desk")) == 1
    kubectl("delete", "voiceagent", "desk", "-n", ns)
    assert lk_trunks(livekit, ns, "desk") == []


@pytest.mark.cluster
def test_unreachable_livekit_is_reported_without_crashing(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    ns = namespace
    kubectl.apply(cluster_secrets(ns, livekit))
    nowhere = f"ws://127.0.0.1:{free_port()}"
    kubectl.apply(phone_agent("far", ns, nowhere, ["+15550300"]))
    cond = wait_for(
        "LiveKitUnreachable",
        lambda: (c := telephony(kubectl, "far", ns)).get("reason") == "LiveKitUnreachable" and c,
        30,
    )
    assert nowhere in cond["message"]
    assert operator.proc is not None
    assert operator.proc.poll() is None
    kubectl.apply(phone_agent("far", ns, livekit, ["+15550300"]))  # the right URL
    wait_for("telephony ready", lambda: sip_ready(kubectl, "far", ns), 30)
    kubectl("delete", "voiceagent", "far", "-n", ns)
    assert lk_trunks(livekit, ns, "far") == []


@pytest.mark.cluster
def test_restart_and_lost_status_make_no_duplicates_and_idle_writes_nothing(
    kubectl: Kubectl,
    namespace: str,
    operator: OperatorProcess,
    livekit: LiveKitServer,
    control_plane: Any,
) -> None:
    ns = namespace
    kubectl.apply(cluster_secrets(ns, livekit))
    kubectl.apply(phone_agent("line", ns, livekit, ["+15550400"]))
    va = wait_for("telephony ready", lambda: sip_ready(kubectl, "line", ns), 40)
    ids = (va["status"]["sipTrunkId"], va["status"]["sipDispatchRuleId"])

    operator.kill()  # SIGKILL, and the status forgets the ids: LiveKit's metadata remembers
    kubectl.patch_status("voiceagent", "line", ns, {"sipTrunkId": None, "sipDispatchRuleId": None})
    operator.start()
    va = wait_for("ids back in status", lambda: sip_ready(kubectl, "line", ns), 40)
    assert (va["status"]["sipTrunkId"], va["status"]["sipDispatchRuleId"]) == ids
    assert [t.sip_trunk_id for t in lk_trunks(livekit, ns, "line")] == [ids[0]]
    assert [r.sip_dispatch_rule_id for r in lk_rules(livekit, ns, "line")] == [ids[1]]

    # Idle: two resyncs write nothing, neither to Kubernetes nor to LiveKit.
    wait_quiet(control_plane.audit_log, SA_USER, quiet=RESYNC_SECONDS + 1)
    start, logged = time.time(), len(operator.log_records())
    time.sleep(2 * RESYNC_SECONDS + 1)
    writes = [
        w
        for w in audit_writes(control_plane.audit_log, SA_USER, start)
        if w["objectRef"].get("namespace") == ns
    ]
    assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]
    sip_writes = [r for r in operator.log_records()[logged:] if "SIP" in str(r.get("message", ""))]
    assert sip_writes == []
    kubectl("delete", "voiceagent", "line", "-n", ns)
    assert lk_trunks(livekit, ns, "line") == []


@pytest.mark.cluster
def test_finalizer_only_with_telephony_and_released_when_telephony_is_removed(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    ns = namespace
    kubectl.apply(cluster_secrets(ns, livekit))
    kubectl.apply(voice_agent("web", ns))
    kubectl.apply(phone_agent("both", ns, livekit, ["+15550500"]))
    web = wait_for(
        "web agent reconciled",
        lambda: (
            (v := kubectl.get("voiceagent", "web", ns))
            and v.get("status", {}).get("agentName")
            and v
        ),
    )
    wait_for("telephony ready", lambda: sip_ready(kubectl, "both", ns), 40)
    assert not web["metadata"].get("finalizers")
    assert not telephony(kubectl, "web", ns)
    assert "sipTrunkId" not in web["status"]

    # Telephony dropped from the spec: LiveKit objects removed, finalizer and ids released.
    kubectl(
        "patch",
        "voiceagent",
        "both",
        "-n",
        ns,
        "--type=json",
        "-p",
        json.dumps([{"op": "remove", "path": "/spec/telephony"}]),
    )

    def released() -> bool:
        va = kubectl.get("voiceagent", "both", ns) or {}
        return (
            not va["metadata"].get("finalizers")
            and "sipTrunkId" not in va.get("status", {})
            and not telephony(kubectl, "both", ns)
        )

    wait_for("finalizer released", released, 30)
    assert lk_trunks(livekit, ns, "both") == []
    assert lk_rules(livekit, ns, "both") == []
