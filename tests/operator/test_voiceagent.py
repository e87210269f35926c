"""VoiceAgent → children, updates, drift, deletion, Secrets, status (real control plane)."""

from __future__ import annotations

import json

import pytest
from kubernetes.utils.quantity import parse_quantity
from kubevox_api import AgentRuntimeConfig, VoiceAgent
from kubevox_api.contract import ACTIVE_CALLS_ANNOTATION, CONFIG_HASH_ANNOTATION
from kubevox_operator.builders.sizing import worker_resources

from tests.support.kube import (
    Kubectl,
    condition,
    delete_and_wait_recreated,
    make_pods_ready,
    wait_for,
)
from tests.support.objects import secrets, voice_agent
from tests.support.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster
SELECTOR = "kubevox.dev/voiceagent"

KINDS = (
    "configmap/{n}-config",
    "serviceaccount/{n}-worker",
    "rolebinding/{n}-worker",
    "deployment/{n}",
    "hpa/{n}",
    "service/{n}-metrics",
    "pdb/{n}",
)


def children(k: Kubectl, name: str, ns: str) -> dict[str, dict]:
    out = {}
    for ref in KINDS:
        kind, obj = ref.format(n=name).split("/")
        got = k.get(kind, obj, ns)
        if got:
            out[kind] = got
    return out


def all_children(k: Kubectl, name: str, ns: str) -> dict[str, dict]:
    return wait_for(
        "all children",
        lambda: ((c := children(k, name, ns)) and len(c) == len(KINDS) and c) or None,
    )


def test_create_makes_owned_children_with_the_right_fields(kubectl: Kubectl, namespace: str):
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace))
    kids = all_children(kubectl, "ava", namespace)
    va = kubectl.get("voiceagent", "ava", namespace)
    assert va
    for kind, obj in kids.items():
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == (
            "VoiceAgent",
            va["metadata"]["uid"],
            True,
        ), kind
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubevox-operator"

    config = AgentRuntimeConfig.model_validate_json(kids["configmap"]["data"]["agent.json"])
    assert config.agent_name == f"{namespace}.ava"  # unique across namespaces
    assert config.spec.instructions.startswith("You are")
    assert "SECRET" not in kids["configmap"]["data"]["agent.json"]  # no secret in it

    dep = kids["deployment"]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "registry.test/kubevox/agent-runtime:test"
    assert c["command"] + c["args"] == [
        "kubevox-agent",
        "start",
        "--config",
        "/etc/kubevox/agent.json",
    ]
    env = {e["name"]: e for e in c["env"]}
    for var in (
        "LIVEKIT_API_KEY",
        "LIVEKIT_API_SECRET",
        "KUBEVOX_STT_API_KEY",
        "KUBEVOX_LLM_API_KEY",
        "KUBEVOX_TTS_API_KEY",
    ):
        assert "value" not in env[var]
        assert env[var]["valueFrom"]["secretKeyRef"]
    assert env["KUBEVOX_STT_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "providers",
        "key": "deepgram",
    }
    assert pod["terminationGracePeriodSeconds"] == 1800 + 30
    assert c["readinessProbe"]["httpGet"] == {"path": "/", "port": "health", "scheme": "HTTP"}
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"health": 8081, "metrics": 9100}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"]
    assert not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert CONFIG_HASH_ANNOTATION in dep["spec"]["template"]["metadata"]["annotations"]
    # The operator never sets replicas: the HPA owns them.
    ours = [m for m in dep["metadata"]["managedFields"] if m["manager"] == "kubevox-operator"]
    assert ours
    assert all('"f:replicas"' not in json.dumps(m["fieldsV1"].get("f:spec", {})) for m in ours)

    hpa = kids["hpa"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 5)
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == "kubevox_active_calls"
    assert hpa["metrics"][0]["pods"]["target"]["averageValue"] == "2"
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert hpa["behavior"]["scaleDown"]["policies"] == [
        {"type": "Pods", "value": 1, "periodSeconds": 60}
    ]
    assert kids["service"]["spec"]["ports"][0]["port"] == 9100
    assert kids["pdb"]["spec"]["maxUnavailable"] == 1
    assert kubectl.get("servicemonitor", "ava", namespace) is None  # CRD absent here


def test_status_follows_the_workers_and_their_calls(kubectl: Kubectl, namespace: str):
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace))
    all_children(kubectl, "ava", namespace)
    sel = "kubevox.dev/voiceagent=ava"
    wait_for("worker pods", lambda: kubectl.list("pods", namespace, sel))
    va = wait_for(
        "Ready=False while no worker is ready",
        lambda: (
            (v := kubectl.get("voiceagent", "ava", namespace))
            and condition(v, "Ready").get("status") == "False"
            and v
        ),
    )
    assert va["status"]["observedGeneration"] == va["metadata"]["generation"]
    make_pods_ready(kubectl, namespace, sel)
    va = wait_for(
        "Ready",
        lambda: (
            (v := kubectl.get("voiceagent", "ava", namespace))
            and condition(v, "Ready").get("status") == "True"
            and v
        ),
    )
    assert va["status"]["readyReplicas"] == va["status"]["replicas"] == 1
    assert condition(va, "Progressing")["reason"] == "RolloutComplete"
    # No custom metrics API in this cluster: the HPA says so, and so does Degraded.
    wait_for(
        "Degraded by the autoscaler",
        lambda: (
            condition(kubectl.get("voiceagent", "ava", namespace), "Degraded").get("reason")
            == "AutoscalerInactive"
        ),
    )
    # The worker reports its calls on its own pod; the status sums what the pods report.
    (pod,) = kubectl.list("pods", namespace, sel)
    kubectl(
        "annotate",
        "pod",
        pod["metadata"]["name"],
        "-n",
        namespace,
        f"{ACTIVE_CALLS_ANNOTATION}=3",
        "controller.kubernetes.io/pod-deletion-cost=3",
    )
    wait_for(
        "activeCalls=3",
        lambda: kubectl.get("voiceagent", "ava", namespace)["status"].get("activeCalls") == 3,
    )
    events = kubectl("get", "events", "-n", namespace, "-o", "json")
    reasons = {
        e["reason"]
        for e in json.loads(events)["items"]
        if e["involvedObject"]["kind"] == "VoiceAgent"
    }
    assert "AgentReady" in reasons


def test_instructions_change_rolls_the_pods_scaling_change_does_not(
    kubectl: Kubectl, namespace: str
):
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace))
    kids = all_children(kubectl, "ava", namespace)
    hash0 = kids["deployment"]["spec"]["template"]["metadata"]["annotations"][
        CONFIG_HASH_ANNOTATION
    ]
    gen0 = kids["deployment"]["metadata"]["generation"]

    kubectl(
        "patch",
        "voiceagent",
        "ava",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"instructions": "You are terse."}}),
    )
    dep = wait_for(
        "a new config hash",
        lambda: (
            (d := kubectl.get("deployment", "ava", namespace))
            and d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] != hash0
            and d
        ),
    )
    cm = kubectl.get("configmap", "ava-config", namespace)
    assert json.loads(cm["data"]["agent.json"])["spec"]["instructions"] == "You are terse."
    gen1 = dep["metadata"]["generation"]
    assert gen1 > gen0

    kubectl(
        "patch",
        "voiceagent",
        "ava",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"scaling": {"maxReplicas": 9}}}),
    )
    wait_for(
        "HPA maxReplicas=9",
        lambda: kubectl.get("hpa", "ava", namespace)["spec"]["maxReplicas"] == 9,
    )
    wait_for(
        "status caught up",
        lambda: (
            (v := kubectl.get("voiceagent", "ava", namespace))
            and v["status"].get("observedGeneration") == v["metadata"]["generation"]
        ),
    )
    assert kubectl.get("deployment", "ava", namespace)["metadata"]["generation"] == gen1


def test_drift_is_repaired(kubectl: Kubectl, namespace: str):
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace))
    all_children(kubectl, "ava", namespace)
    delete_and_wait_recreated(kubectl, "service", "ava-metrics", namespace, timeout=10)
    kubectl(
        "patch",
        "hpa",
        "ava",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"maxReplicas": 50}}',
    )
    wait_for(
        "the HPA reverted",
        lambda: kubectl.get("hpa", "ava", namespace)["spec"]["maxReplicas"] == 5,
        timeout=10,
    )


def test_deleting_the_agent_garbage_collects_its_children(kubectl: Kubectl, namespace: str):
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace))
    all_children(kubectl, "ava", namespace)
    kubectl("delete", "voiceagent", "ava", "-n", namespace)
    wait_for("children gone", lambda: not children(kubectl, "ava", namespace), timeout=60)


def test_missing_secret_degrades_then_recovers_once_created(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
):
    kubectl.apply([s for s in secrets(namespace) if s["metadata"]["name"] != "providers"])
    kubectl.apply(voice_agent("ava", namespace))
    va = wait_for(
        "Degraded SecretMissing",
        lambda: (
            (v := kubectl.get("voiceagent", "ava", namespace))
            and condition(v, "Degraded").get("reason") == "SecretMissing"
            and v
        ),
    )
    assert f"Secret {namespace}/providers not found" in condition(va, "Degraded")["message"]
    assert condition(va, "Ready")["status"] == "False"
    kubectl.apply([s for s in secrets(namespace) if s["metadata"]["name"] == "providers"])
    wait_for("pods", lambda: kubectl.list("pods", namespace, "kubevox.dev/voiceagent=ava"))
    make_pods_ready(kubectl, namespace, "kubevox.dev/voiceagent=ava")
    va = wait_for(
        "Ready after the Secret exists",
        lambda: (
            (v := kubectl.get("voiceagent", "ava", namespace))
            and condition(v, "Ready").get("status") == "True"
            and v
        ),
        timeout=20,
    )
    assert condition(va, "Degraded")["reason"] != "SecretMissing"
    # Retried quietly: no traceback per retry.
    tracebacks = [
        r for r in operator.log_records() if "exception" in r and namespace in r.get("message", "")
    ]
    assert not tracebacks, tracebacks[:1]


def test_worker_pods_are_sized_for_their_calls_and_a_shortfall_is_reported(
    kubectl: Kubectl, namespace: str
):
    """Unset resources are sized for maxCallsPerPod (issue 20): the ReplicaSet controller's
    pods carry them, so the API server took them as valid; an agent whose memory limit holds
    fewer calls says so in ResourcesFit and a Warning Event, and its pods still run."""
    kubectl.apply(secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace))
    kubectl.apply(voice_agent("tiny", namespace, resources={"limits": {"memory": "512Mi"}}))
    for name in ("ava", "tiny"):
        (pod,) = wait_for(
            f"{name}'s pod", lambda n=name: kubectl.list("pods", namespace, f"{SELECTOR}={n}")
        )
        agent = VoiceAgent.model_validate(kubectl.get("voiceagent", name, namespace))
        assert quantities(pod["spec"]["containers"][0]["resources"]) == quantities(
            worker_resources(agent)
        )
    ava = wait_for(
        "ResourcesFit",
        lambda: condition(kubectl.get("voiceagent", "ava", namespace), "ResourcesFit"),
    )
    assert (ava["status"], ava["reason"]) == ("True", "ResourcesHoldMaxCalls")
    tiny = wait_for(
        "tiny's ResourcesFit",
        lambda: condition(kubectl.get("voiceagent", "tiny", namespace), "ResourcesFit"),
    )
    assert (tiny["status"], tiny["reason"]) == ("False", "ResourcesBelowMaxCalls")
    assert tiny["message"].startswith("spec.resources.limits.memory 512Mi hold ")
    warnings = wait_for(
        "the Warning Event",
        lambda: [
            e
            for e in json.loads(kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
            if e["involvedObject"]["name"] == "tiny" and e["reason"] == "ResourcesBelowMaxCalls"
        ],
    )
    assert warnings[0]["type"] == "Warning"
    assert warnings[0]["message"] == tiny["message"]


def quantities(resources: dict) -> dict:
    """Amounts as numbers: the API server writes them back in its own form (1024Mi as 1Gi)."""
    return {
        kind: {name: parse_quantity(q) for name, q in amounts.items()}
        for kind, amounts in resources.items()
    }
