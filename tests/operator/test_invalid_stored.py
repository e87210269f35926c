"""A VoiceAgent that the API server stored before a rule kubevox added since (an Italian agent
without phrases was valid before issue #18), on the real control plane with the real operator:
it is reported in its status and an Event, naming the field, and nothing is built for it until
it is fixed. (tests/operator/test_invalid_spec.py covers the reconciler's every case, faster.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.kube import Kubectl, condition, wait_for
from tests.support.objects import secrets, voice_agent

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CRD = "voiceagents.kubevox.dev"
RULE = "language has no built-in phrases"


def _accepted(kubectl: Kubectl, obj: dict) -> bool:
    """Whether the API server would create ``obj`` now (under a name nothing has: an unchanged
    object that exists is not validated again, CRD validation ratcheting)."""
    probe = {**obj, "metadata": {**obj["metadata"], "name": "rule-probe"}}
    out = kubectl.plane.kubectl_run(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(probe)
    )
    return out.returncode == 0


@contextmanager
def rule_lifted(kubectl: Kubectl, refused: dict) -> Iterator[None]:
    """The VoiceAgent CRD as it was before the phrases rule; restored after."""
    crd = json.loads(kubectl("get", "crd", CRD, "-o", "json"))
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (index,) = [
        i for i, r in enumerate(spec["x-kubernetes-validations"]) if RULE in r.get("message", "")
    ]
    path = (
        f"/spec/versions/0/schema/openAPIV3Schema/properties/spec/x-kubernetes-validations/{index}"
    )
    kubectl("patch", "crd", CRD, "--type=json", "-p", json.dumps([{"op": "remove", "path": path}]))
    try:
        wait_for("the CRD without the rule", lambda: _accepted(kubectl, refused))
        yield
    finally:
        kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / f"{CRD}.yaml")
        )
        wait_for("the rule back", lambda: not _accepted(kubectl, refused))


def test_an_agent_stored_before_a_rule_says_which_field_and_gets_no_workers(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(secrets(namespace))
    old = voice_agent("old", namespace, language="it")
    with rule_lifted(kubectl, old):
        kubectl.apply(old)

    va = wait_for(
        "Ready False InvalidSpec",
        lambda: (
            (v := kubectl.get("voiceagent", "old", namespace))
            and condition(v, "Ready").get("reason") == "InvalidSpec"
            and v
        ),
    )
    assert "spec.phrases: language has no built-in phrases" in condition(va, "Ready")["message"]
    assert condition(va, "Degraded")["status"] == "True"
    assert va["status"]["observedGeneration"] == va["metadata"]["generation"]
    assert kubectl.get("deployment", "old", namespace) is None
    events = json.loads(
        kubectl("get", "events", "-n", namespace, "--field-selector",
                "involvedObject.name=old", "-o", "json")
    )["items"]  # fmt: skip
    assert [e["reason"] for e in events] == ["InvalidSpec"]
    assert "spec.phrases" in events[0]["message"]

    # Fixed the way the message says: the agent gets its workers.
    every = dict.fromkeys(
        ["apology", "timeLimitGoodbye", "silencePrompt", "silenceGoodbye", "transferNotice",
         "guardRefusal"], "Un momento, per favore.",
    )  # fmt: skip
    kubectl.apply(voice_agent("old", namespace, language="it", phrases=every))
    wait_for("its Deployment", lambda: kubectl.get("deployment", "old", namespace))
    va = wait_for(
        "InvalidSpec gone",
        lambda: (
            (v := kubectl.get("voiceagent", "old", namespace))
            and condition(v, "Ready").get("reason") != "InvalidSpec"
            and v
        ),
    )
    assert condition(va, "Degraded").get("reason") != "InvalidSpec"
