"""spec.recording on a real control plane, with the operator running as its ServiceAccount: the
API server admits the expiry CronJob the builders make (schedule, time zone, restricted pod),
the operator's role may write it, it is owned by the VoiceAgent, and it goes with
spec.recording. tests/system/test_recording_node.py runs it on the node."""

from __future__ import annotations

import pytest

from tests.support.kube import Kubectl, wait_for
from tests.support.objects import secrets, voice_agent
from tests.support.operator_process import OperatorProcess

from .test_recording_builders import RECORDING

NAME = "recorded"
CRONJOB = f"{NAME}-recordings-expiry"


@pytest.mark.cluster
def test_the_expiry_cronjob_is_admitted_owned_and_goes_with_spec_recording(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    kubectl.apply(secrets(ns))
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3", "namespace": ns},
            "stringData": {"access": "AKIAEXAMPLE", "secret": "not-a-real-secret"},
        }
    )
    kubectl.apply(voice_agent(NAME, ns, recording=RECORDING))
    cronjob = wait_for("the expiry CronJob", lambda: kubectl.get("cronjob", CRONJOB, ns), 60)
    agent = kubectl.get("voiceagent", NAME, ns)
    assert agent is not None
    (owner,) = cronjob["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("VoiceAgent", agent["metadata"]["uid"])
    assert cronjob["spec"]["timeZone"] == "Etc/UTC"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["recordings", "expire"]
    assert "not-a-real-secret" not in str(cronjob)  # the key is referenced, never copied
    policy = kubectl.get("networkpolicy", f"{CRONJOB}-egress", ns)
    assert policy is not None

    kubectl.apply(voice_agent(NAME, ns))  # spec.recording removed
    wait_for("the CronJob gone", lambda: kubectl.get("cronjob", CRONJOB, ns) is None, 60)
    assert kubectl.get("networkpolicy", f"{CRONJOB}-egress", ns) is None
    assert kubectl.get("deployment", NAME, ns) is not None  # the workers stay
