"""The pure builders, diff and status functions: no cluster."""

from __future__ import annotations

from typing import Any

from kubevox_operator.api import KnowledgeBase, VoiceAgent
from kubevox_operator.builders import OperatorDefaults, build_agent_children, build_ingest_plan
from kubevox_operator.builders.knowledge import content_hash, parse_duration
from kubevox_operator.diff import contains
from kubevox_operator.status import AgentObservation, Problem, active_calls, agent_status

from .objects import faq, knowledge_base, voice_agent

OWNER = {"uid": "u-1"}


def build(**spec: Any) -> dict[str, dict]:
    body = voice_agent("ava", "ns", **spec)
    body["metadata"]["uid"] = "u-1"
    va = VoiceAgent.model_validate(body)
    kids = build_agent_children(va, body, {}, OperatorDefaults(image="img:1"))
    return {o["kind"]: o for o in kids.objects}


def template_hash(objs: dict[str, dict]) -> str:
    return objs["Deployment"]["spec"]["template"]["metadata"]["annotations"][
        "kubevox.dev/config-hash"
    ]


def test_scaling_changes_do_not_change_the_pod_template():
    a, b = (
        build(),
        build(
            scaling={
                "minReplicas": 2,
                "maxReplicas": 9,
                "targetCallsPerPod": 2,
                "maxCallsPerPod": 4,
            }
        ),
    )
    assert a["Deployment"] == b["Deployment"]
    assert a["HorizontalPodAutoscaler"] != b["HorizontalPodAutoscaler"]
    c = build(instructions="Something else.")
    assert template_hash(c) != template_hash(a)


def test_no_replicas_grace_covers_the_drain_and_pod_extras_pass_through():
    objs = build(
        drainTimeoutSeconds=600,
        pod={
            "nodeSelector": {"pool": "voice"},
            "priorityClassName": "voice-critical",
            "labels": {"app.kubernetes.io/name": "x"},
        },
    )
    dep = objs["Deployment"]
    assert "replicas" not in dep["spec"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 630
    assert pod["nodeSelector"] == {"pool": "voice"}
    assert pod["priorityClassName"] == "voice-critical"
    assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "kubevox"
    assert "ServiceMonitor" not in objs


def test_service_monitor_only_when_the_crd_exists():
    body = voice_agent("ava", "ns")
    body["metadata"]["uid"] = "u"
    kids = build_agent_children(
        VoiceAgent.model_validate(body), body, {}, OperatorDefaults(service_monitor=True)
    )
    assert "ServiceMonitor" in {o["kind"] for o in kids.objects}


def test_content_hash_follows_config_map_data_and_the_job_mounts_it():
    kb = KnowledgeBase.model_validate(knowledge_base("docs", "ns"))
    one = content_hash(kb, {"faq": faq("ns")["data"]}, {})
    two = content_hash(kb, {"faq": {"faq.md": "changed"}}, {})
    assert one != two
    assert one == content_hash(kb, {"faq": faq("ns")["data"]}, {})
    body = knowledge_base("docs", "ns")
    body["metadata"]["uid"] = "u"
    plan = build_ingest_plan(kb, body, one, one[:10], "img")
    spec = plan.job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert {
        "name": next(
            v["name"]
            for v in spec["volumes"]
            if "configMap" in v and v["configMap"]["name"] == "faq"
        ),
        "mountPath": "/var/run/kubevox/sources/configmap/faq",
        "readOnly": True,
    } in spec["containers"][0]["volumeMounts"]
    assert parse_duration("1h30m") == 5400


def test_contains_ignores_server_defaults_and_normalises_quantities():
    live = {"spec": {"cpu": "1", "ports": [{"port": 1, "protocol": "TCP"}], "x": 1}}
    assert contains(live, {"spec": {"cpu": "1000m", "ports": [{"port": 1}], "sel": {}}})
    assert not contains(live, {"spec": {"cpu": "2"}})
    assert not contains(live, {"spec": {"ports": [{"port": 1}, {"port": 2}]}})


def test_agent_status_is_derived_from_children():
    dep = {
        "metadata": {"name": "ava", "generation": 2},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }
    st = agent_status(AgentObservation(3, {}, "ava", "h", deployment=dep))
    ready = {c["type"]: c for c in st["conditions"]}
    assert ready["Ready"]["status"] == "True"
    assert ready["Degraded"]["status"] == "False"
    st = agent_status(
        AgentObservation(
            3, st, "ava", "h", deployment=dep, blocking=[Problem("SecretMissing", "Secret ns/x")]
        )
    )
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Degraded"]["reason"] == "SecretMissing"
    assert conds["Ready"]["status"] == "False"
    pods = [
        {"metadata": {"annotations": {"kubevox.dev/active-calls": "2"}}},
        {"metadata": {"annotations": {"kubevox.dev/active-calls": "1"}, "deletionTimestamp": "x"}},
    ]
    assert active_calls(pods) == 3
    assert active_calls([{"metadata": {}}]) is None
    assert active_calls([]) == 0
