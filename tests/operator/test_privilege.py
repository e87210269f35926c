"""Least privilege of what the operator writes, on the real control plane (issue 15, items 4,
6 and 8): egress NetworkPolicies accepted by the API server and owned by their VoiceAgent or
KnowledgeBase, the worker role never bound to a foreign ServiceAccount, and the operator's
restrictions on images and ServiceAccounts (Degraded with the reason, no Deployment change).

The local control plane accepts NetworkPolicy objects; nothing enforces them here (no CNI)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.kube import Kubectl, condition, wait_for
from tests.support.objects import faq, knowledge_base, secrets, voice_agent
from tests.support.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster

REDIS_PASSWORD = "pw-SECRET-7"


def _secrets(ns: str) -> list[dict[str, Any]]:
    out = secrets(ns)
    for s in out:
        if s["metadata"]["name"] == "redis":
            s["stringData"] = {"url": f"redis://:{REDIS_PASSWORD}@redis.data.svc:6380/0"}
    return out


def _degraded(k: Kubectl, name: str, ns: str, reason: str) -> dict[str, Any]:
    return wait_for(
        f"Degraded {reason}",
        lambda: (
            (v := k.get("voiceagent", name, ns))
            and condition(v, "Degraded").get("reason") == reason
            and v
        ),
    )


def test_agent_workers_get_an_owned_default_deny_egress_policy(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(_secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace))
    policy = wait_for(
        "egress policy", lambda: kubectl.get("networkpolicy", "ava-worker-egress", namespace)
    )
    va = kubectl.get("voiceagent", "ava", namespace)
    assert va is not None
    (ref,) = policy["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"]) == ("VoiceAgent", va["metadata"]["uid"])
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Egress"]
    dep = wait_for("deployment", lambda: kubectl.get("deployment", "ava", namespace))
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    # LiveKit (ws://livekit:7880): pods of the agent's own namespace on the URL's port.
    own = {"kubernetes.io/metadata.name": namespace}
    assert {
        "to": [{"namespaceSelector": {"matchLabels": own}, "podSelector": {}}],
        "ports": [{"protocol": "TCP", "port": 7880}],
    } in spec["egress"]


def test_ingestion_jobs_get_their_policy_without_the_redis_password(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(_secrets(namespace))
    kubectl.apply(faq(namespace))
    kubectl.apply(knowledge_base("docs", namespace))
    policy = wait_for(
        "ingest egress policy",
        lambda: kubectl.get("networkpolicy", "docs-ingest-egress", namespace),
    )
    kb = kubectl.get("knowledgebase", "docs", namespace)
    assert kb is not None
    assert policy["metadata"]["ownerReferences"][0]["uid"] == kb["metadata"]["uid"]
    jobs = wait_for(
        "ingest job", lambda: kubectl.list("jobs", namespace, "kubevox.dev/knowledgebase=docs")
    )
    job_labels = jobs[0]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= job_labels.items()
    # Redis from the Secret: namespace "data", port 6380; its password nowhere in the object.
    assert {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}},
                "podSelector": {},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 6380}],
    } in policy["spec"]["egress"]
    assert REDIS_PASSWORD not in str(policy)
    # Garbage-collected with its owner.
    kubectl("delete", "knowledgebase", "docs", "-n", namespace)
    wait_for(
        "policy gone",
        lambda: kubectl.get("networkpolicy", "docs-ingest-egress", namespace) is None,
        timeout=60,
    )


def test_foreign_service_account_is_never_bound_and_is_reported(
    kubectl: Kubectl, namespace: str
) -> None:
    """Set from the start: no binding subject, no ServiceAccount made; set later: the subject
    bound to the operator's own ServiceAccount is taken back."""
    kubectl.apply(_secrets(namespace))
    kubectl("create", "serviceaccount", "ci-deployer", "-n", namespace)
    kubectl.apply(voice_agent("ava", namespace, pod={"serviceAccountName": "ci-deployer"}))
    va = _degraded(kubectl, "ava", namespace, "WorkerRoleNotBound")
    assert "ci-deployer" in condition(va, "Degraded")["message"]
    binding = wait_for("rolebinding", lambda: kubectl.get("rolebinding", "ava-worker", namespace))
    assert not binding.get("subjects"), binding
    dep = wait_for("deployment", lambda: kubectl.get("deployment", "ava", namespace))
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "ci-deployer"
    assert kubectl.get("serviceaccount", "ava-worker", namespace) is None

    kubectl.apply(voice_agent("bea", namespace))
    wait_for(
        "bea's worker bound",
        lambda: (b := kubectl.get("rolebinding", "bea-worker", namespace)) and b.get("subjects"),
    )
    kubectl.apply(voice_agent("bea", namespace, pod={"serviceAccountName": "ci-deployer"}))
    _degraded(kubectl, "bea", namespace, "WorkerRoleNotBound")
    wait_for(
        "bea's subject taken back",
        lambda: not (kubectl.get("rolebinding", "bea-worker", namespace) or {}).get("subjects"),
    )


# --- an operator configured with restrictions -----------------------------------------------

ALLOWED_PREFIX = "registry.test/kubevox/"


@pytest.fixture
def restricted(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The session's operator, restarted with restrictions (and restarted without after)."""
    plain = operator.extra
    operator.stop()
    operator.extra = (
        *plain,
        "--allowed-image-prefix",
        ALLOWED_PREFIX,
        "--no-allow-foreign-service-accounts",
    )
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
        operator.extra = plain
        operator.start()


def test_image_outside_the_allowed_prefixes_is_refused_and_the_deployment_kept(
    kubectl: Kubectl, namespace: str, restricted: OperatorProcess
) -> None:
    kubectl.apply(_secrets(namespace))
    kubectl.apply(voice_agent("ava", namespace, image=f"{ALLOWED_PREFIX}agent-runtime:2"))
    dep = wait_for("deployment", lambda: kubectl.get("deployment", "ava", namespace))
    kubectl.apply(voice_agent("ava", namespace, image="docker.io/evil/miner:1"))
    va = _degraded(kubectl, "ava", namespace, "ImageNotAllowed")
    message = condition(va, "Degraded")["message"]
    assert "spec.image" in message
    assert "docker.io/evil/miner:1" in message
    assert condition(va, "Ready")["status"] == "False"
    after = kubectl.get("deployment", "ava", namespace)
    assert after is not None
    assert after["metadata"]["generation"] == dep["metadata"]["generation"]
    (container,) = after["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{ALLOWED_PREFIX}agent-runtime:2"


def test_foreign_service_account_is_refused_when_the_operator_says_so(
    kubectl: Kubectl, namespace: str, restricted: OperatorProcess
) -> None:
    kubectl.apply(_secrets(namespace))
    kubectl.apply(voice_agent("bob", namespace, pod={"serviceAccountName": "default"}))
    va = _degraded(kubectl, "bob", namespace, "ServiceAccountNotAllowed")
    assert "spec.pod.serviceAccountName" in condition(va, "Degraded")["message"]
    assert kubectl.get("deployment", "bob", namespace) is None
    assert kubectl.get("rolebinding", "bob-worker", namespace) is None
