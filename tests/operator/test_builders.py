"""The pure builders, diff and status functions: no cluster."""

from __future__ import annotations

from typing import Any

from kubevox_api import AgentRuntimeConfig, KnowledgeBase, VoiceAgent, contract
from kubevox_api.contract import ACTIVE_CALLS_METRIC, AGENT_CALLS_METRIC
from kubevox_api.runtime_config import config_hash
from kubevox_operator.builders import OperatorDefaults, build_agent_children, build_ingest_plan
from kubevox_operator.builders.autoscaling import active_calls_query, calls_query
from kubevox_operator.builders.knowledge import content_hash, parse_duration
from kubevox_operator.diff import contains
from kubevox_operator.status import (
    AgentObservation,
    Problem,
    active_calls,
    agent_status,
    autoscaler_unavailable,
)

from tests.support.objects import faq, knowledge_base, voice_agent

OWNER = {"uid": "u-1"}
KEDA = OperatorDefaults(
    image="img:1", served=frozenset({"ScaledObject"}), prometheus_url="http://prom.mon:9090"
)
SCALING = {
    "minReplicas": 0,
    "maxReplicas": 7,
    "targetCallsPerPod": 3,
    "maxCallsPerPod": 5,
    "scaleDownStabilizationSeconds": 420,
}


def build(defaults: OperatorDefaults | None = None, **spec: Any) -> dict[str, dict]:
    body = voice_agent("ava", "ns", **spec)
    body["metadata"]["uid"] = "u-1"
    va = VoiceAgent.model_validate(body)
    kids = build_agent_children(va, body, {}, defaults or OperatorDefaults(image="img:1"))
    return {o["kind"]: o for o in kids.objects}


def missing(defaults: OperatorDefaults, **spec: Any) -> list[str]:
    body = voice_agent("ava", "ns", **spec)
    body["metadata"]["uid"] = "u-1"
    kids = build_agent_children(VoiceAgent.model_validate(body), body, {}, defaults)
    return kids.autoscaler_missing


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


def test_the_executor_is_read_by_the_workers_and_rolls_them():
    default, threads = build(scaling=SCALING), build(scaling={**SCALING, "executor": "thread"})
    assert template_hash(threads) != template_hash(default)
    # An agent that never set it keeps the hash it had before the field existed: an operator
    # upgrade rolls no worker.
    explicit = build(scaling={**SCALING, "executor": "process"})
    assert template_hash(explicit) == template_hash(default)


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
        VoiceAgent.model_validate(body),
        body,
        {},
        OperatorDefaults(served=frozenset({"ServiceMonitor"})),
    )
    assert "ServiceMonitor" in {o["kind"] for o in kids.objects}


def test_keda_scaled_object_mirrors_the_hpa_and_reads_prometheus():
    hpa = build(KEDA, scaling=SCALING)["HorizontalPodAutoscaler"]  # autoscaler defaults to hpa
    objs = build(KEDA, scaling={**SCALING, "autoscaler": "keda"})
    assert "HorizontalPodAutoscaler" not in objs
    so = objs["ScaledObject"]
    assert (so["apiVersion"], so["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert so["metadata"] == hpa["metadata"]  # name, namespace, labels, owner reference
    assert so["metadata"]["name"] == objs["Deployment"]["metadata"]["name"]
    assert so["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    spec = so["spec"]
    assert spec["scaleTargetRef"] == hpa["spec"]["scaleTargetRef"]
    assert spec["scaleTargetRef"]["name"] == objs["Deployment"]["metadata"]["name"]
    # minReplicas 0: KEDA scales to zero (waiting calls wake it), an HPA keeps one pod.
    assert (spec["minReplicaCount"], hpa["spec"]["minReplicas"]) == (0, 1)
    assert spec["maxReplicaCount"] == hpa["spec"]["maxReplicas"] == 7
    assert spec["pollingInterval"] == 5
    assert spec["cooldownPeriod"] == 420
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == hpa["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 420
    assert spec["triggers"] == [
        {
            "type": "prometheus",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": "http://prom.mon:9090",
                "query": calls_query("ns", "ava"),
                "threshold": "3",
            },
        }
    ]
    assert hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "3"


def test_keda_without_its_crd_or_a_prometheus_url_builds_no_autoscaler():
    keda = {"scaling": {"autoscaler": "keda"}}
    for defaults, want in (
        (OperatorDefaults(), ["ScaledObject CRD", "Prometheus URL"]),
        (OperatorDefaults(served=frozenset({"ScaledObject"})), ["Prometheus URL"]),
        (OperatorDefaults(prometheus_url="http://p:9090"), ["ScaledObject CRD"]),
    ):
        objs = build(defaults, **keda)
        assert not {"HorizontalPodAutoscaler", "ScaledObject"} & set(objs)
        assert "Deployment" in objs  # everything else is still built
        got = missing(defaults, **keda)
        assert len(got) == len(want)
        for message, what in zip(got, want, strict=True):
            assert what in message
    assert missing(OperatorDefaults()) == []  # hpa needs nothing the operator can see
    problem = autoscaler_unavailable("keda", missing(OperatorDefaults(), **keda))
    assert problem is not None
    assert problem.reason == "AutoscalerUnavailable"
    assert "--prometheus-url" in problem.message
    assert autoscaler_unavailable("hpa", []) is None


def test_active_calls_query_selects_the_agent_and_quotes_its_labels():
    query = active_calls_query("clinic", "support")
    assert query.startswith(f'sum({ACTIVE_CALLS_METRIC}{{namespace="clinic",agent="support"}}')
    assert query.endswith(" or vector(0)")
    # A value cannot end its string literal early (names are DNS labels, this is belt and braces).
    assert 'agent="a\\"b\\\\"' in active_calls_query("ns", 'a"b\\')


def test_calls_query_reads_the_operators_count_else_the_workers():
    query = calls_query("clinic", "support")
    assert query == (
        f'max({AGENT_CALLS_METRIC}{{agent_namespace="clinic",agent="support"}})'
        f" or ({active_calls_query('clinic', 'support')})"
    )


def test_content_hash_follows_the_languages_and_the_index_layout(monkeypatch):
    """A new language, or a new index layout of kubevox itself, re-indexes (a new Job)."""
    body = knowledge_base("docs", "ns")
    base = content_hash(KnowledgeBase.model_validate(body), {}, {})
    french = {**body, "spec": {**body["spec"], "language": "fr"}}
    assert content_hash(KnowledgeBase.model_validate(french), {}, {}) != base
    source = {**body["spec"]["sources"][0], "language": "auto"}
    sources = [source, *body["spec"]["sources"][1:]]
    one_auto = {**body, "spec": {**body["spec"], "sources": sources}}
    assert content_hash(KnowledgeBase.model_validate(one_auto), {}, {}) != base
    monkeypatch.setattr(contract, "KNOWLEDGE_INDEX_FORMAT", contract.KNOWLEDGE_INDEX_FORMAT + 1)
    assert content_hash(KnowledgeBase.model_validate(body), {}, {}) != base


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


def test_ingest_job_carries_the_operators_allow_list_and_fails_fast_on_oom():
    kb = KnowledgeBase.model_validate(knowledge_base("docs", "ns"))
    body = knowledge_base("docs", "ns")
    body["metadata"]["uid"] = "u"
    for given in ("", "10.20.0.0/16,192.168.7.1/32"):
        job = build_ingest_plan(kb, body, "d" * 20, "r", "img", given).job
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        # Always set, even empty: the image can never bring a wider list of its own.
        assert {"name": "KUBEVOX_INGEST_ALLOWED_CIDRS", "value": given} in env
    rules = job["spec"]["podFailurePolicy"]["rules"]
    actions = [(r["action"], r.get("onExitCodes", {}).get("values")) for r in rules]
    # Evictions (DisruptionTarget, also exit 137) are retried; an OOM kill is not.
    assert actions.index(("Ignore", None)) < actions.index(("FailJob", [137]))


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


def test_autoscaler_conditions_degrade_but_do_not_un_ready_the_agent():
    dep = {
        "metadata": {"name": "ava", "generation": 1},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }

    def conds(**obs: Any) -> dict[str, dict]:
        st = agent_status(AgentObservation(1, {}, "ava", "h", deployment=dep, **obs))
        return {c["type"]: c for c in st["conditions"]}

    failing = {"type": "Ready", "status": "False", "reason": "TriggerError", "message": "x"}
    so = {"kind": "ScaledObject", "status": {"conditions": [failing]}}
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "status": {"conditions": [{"type": "ScalingActive", "status": "False", "reason": "F"}]},
    }
    unavailable = Problem("AutoscalerUnavailable", "spec.scaling.autoscaler keda: no CRD")
    for obs, reason in (
        ({"autoscaler": so}, "AutoscalerUnable"),
        ({"autoscaler": hpa}, "AutoscalerInactive"),
        ({"autoscaler_unavailable": unavailable}, "AutoscalerUnavailable"),
    ):
        got = conds(**obs)
        assert (got["Degraded"]["status"], got["Degraded"]["reason"]) == ("True", reason)
        assert got["Ready"]["status"] == "True"
    assert "ScaledObject TriggerError: x" in conds(autoscaler=so)["Degraded"]["message"]
    assert conds(autoscaler={"kind": "ScaledObject", "status": {}})["Degraded"]["status"] == "False"


def test_a_worker_computes_the_config_hash_its_pods_carry():
    # The worker logs it in each call record: the same value as the pod template's and status's.
    objs = build()
    rendered = objs["ConfigMap"]["data"][contract.CONFIG_FILE]
    worker_side = config_hash(AgentRuntimeConfig.model_validate_json(rendered))
    assert worker_side == template_hash(objs)


def test_only_a_canary_agents_workers_read_the_rollout_split_and_it_rolls_no_configuration() -> (
    None
):
    """The split's volume is in the pod template only with strategy Canary (turning it on rolls
    the workers once); the rollout settings are no part of the configuration hash."""
    canary = {"strategy": "Canary", "canary": {"steps": [{"weight": 10}]}}

    def volumes(objs: dict[str, dict]) -> dict[str, Any]:
        pod = objs["Deployment"]["spec"]["template"]["spec"]
        return {v["name"]: v for v in pod["volumes"]}

    assert "rollout" not in volumes(build())
    split = volumes(build(rollout=canary))["rollout"]
    assert split["configMap"] == {"name": "ava-rollout", "optional": True}
    hashes = set()
    for rollout in ({}, canary):
        body = voice_agent("va", "ns", rollout=rollout)
        body["metadata"]["uid"] = "u-1"
        agent = VoiceAgent.model_validate(body)
        hashes.add(build_agent_children(agent, body, {}, OperatorDefaults()).config_hash)
    assert len(hashes) == 1
