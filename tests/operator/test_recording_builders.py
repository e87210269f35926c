"""spec.recording in the agent's objects (pure builders) and in the reconciler (on the fake API):
the storage's key pair reaches the workers and the expiry CronJob by secretKeyRef only, the
CronJob runs ``recordings expire`` with the workers' configuration and no token, its pods are
not the workers', the egress policies open the storage to both, and the CronJob goes with the
spec. tests/operator/test_recording_cluster.py applies it to a real control plane."""

from __future__ import annotations

import re
from typing import Any

from kubevox_api import VoiceAgent, secret_refs
from kubevox_api.voiceagent_recording import STORAGE_ACCESS_KEY_ENV, STORAGE_SECRET_KEY_ENV
from kubevox_operator.builders import OperatorDefaults, build_agent_children
from kubevox_operator.builders.agent import agent_selector, worker_env
from kubevox_operator.builders.network import EgressSettings, agent_egress

from tests.support.objects import voice_agent

from .fake_api import harness
from .test_reconcile_voiceagent import KEY, NS, with_agent

RECORDING = {
    "notice": "This call may be recorded. Is that all right?",
    "retentionDays": 14,
    "storage": {
        "endpoint": "https://s3.eu-west-1.example.com:9443",
        "bucket": "calls",
        "accessKeyRef": {"name": "s3", "key": "access"},
        "secretKeyRef": {"name": "s3", "key": "secret"},
    },
}


def agent(**spec: Any) -> tuple[VoiceAgent, dict[str, Any]]:
    body = voice_agent("ava", "ns", **spec)
    body["metadata"]["uid"] = "u-1"
    return VoiceAgent.model_validate(body), body


def cronjob(va: VoiceAgent, body: dict[str, Any]) -> dict[str, Any]:
    kids = build_agent_children(va, body, {}, OperatorDefaults(image="img:1"))
    (job,) = [o for o in kids.objects if o["kind"] == "CronJob"]
    return job


def test_the_key_pair_reaches_the_workers_by_reference_and_is_checked() -> None:
    va, _ = agent(recording=RECORDING)
    env = {e["name"]: e for e in worker_env(va, {})}
    for var, key in ((STORAGE_ACCESS_KEY_ENV, "access"), (STORAGE_SECRET_KEY_ENV, "secret")):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "s3", "key": key}
        assert "value" not in env[var]
    assert {("s3", "access"), ("s3", "secret")} <= {(r.name, r.key) for r in secret_refs(va.spec)}


def test_the_expiry_cronjob_runs_daily_with_the_workers_config_and_no_token() -> None:
    va, body = agent(recording=RECORDING)
    job = cronjob(va, body)
    assert job["metadata"]["name"] == "ava-recordings-expiry"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert re.fullmatch(r"\d{1,2} [1-5] \* \* \*", job["spec"]["schedule"])
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["args"] == ["recordings", "expire"]
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["volumes"][0]["configMap"]["name"] == "ava-config"
    env = {e["name"]: e for e in container["env"]}
    assert env[STORAGE_SECRET_KEY_ENV]["valueFrom"]["secretKeyRef"] == {
        "name": "s3",
        "key": "secret",
    }
    assert not [n for n in env if n.startswith("LIVEKIT_API")]  # it needs no LiveKit key
    # Its pods are not the workers': not in their Deployment, PDB or metrics Service.
    labels = pod["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in agent_selector(va).items())


def test_two_agents_expire_at_different_times_and_each_at_the_same_time_always() -> None:
    one, one_body = agent(recording=RECORDING)
    again = cronjob(one, one_body)["spec"]["schedule"]
    assert cronjob(one, one_body)["spec"]["schedule"] == again
    other_body = voice_agent("billing", "ns", recording=RECORDING)
    other_body["metadata"]["uid"] = "u-2"
    other = VoiceAgent.model_validate(other_body)
    assert cronjob(other, other_body)["spec"]["schedule"] != again


def test_no_recording_no_cronjob() -> None:
    va, body = agent()
    kids = build_agent_children(va, body, {}, OperatorDefaults(image="img:1"))
    assert not [o for o in kids.objects if o["kind"] == "CronJob"]


def test_the_workers_and_the_expiry_may_reach_the_storage_alone() -> None:
    va, body = agent(recording=RECORDING)
    policies = {
        p["metadata"]["name"]: p["spec"] for p in agent_egress(va, body, {}, {}, EgressSettings())
    }
    worker_ports = [r["ports"] for r in policies["ava-worker-egress"]["egress"]]
    assert [{"port": 9443, "protocol": "TCP"}] in worker_ports
    expiry = policies["ava-recordings-expiry-egress"]
    assert expiry["podSelector"]["matchLabels"]["kubevox.dev/recordings"] == "ava"
    ports = [p for r in expiry["egress"] for p in r["ports"]]
    assert {p["port"] for p in ports} == {53, 9443}  # DNS and the storage, nothing else


async def test_the_reconciler_applies_the_cronjob_and_removes_it_with_the_spec() -> None:
    h = harness(egress=EgressSettings())
    with_agent(h, recording=RECORDING)
    h.api.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3", "namespace": NS},
            "data": {"access": "YQ==", "secret": "cw=="},
        }
    )
    await h.agents.reconcile(KEY)
    applied = {(k, n) for _, k, n in h.api.written("apply")}
    assert {
        ("CronJob", "va-recordings-expiry"),
        ("NetworkPolicy", "va-recordings-expiry-egress"),
    } <= applied
    h.watch("CronJob", NS, "va-recordings-expiry")

    spec = h.api.objects[KEY]["spec"]
    spec.pop("recording")
    h.watch("VoiceAgent", NS, "va")
    h.api.writes.clear()
    await h.agents.reconcile(KEY)
    assert h.api.written("delete") == [
        ("delete", "NetworkPolicy", "va-recordings-expiry-egress"),
        ("delete", "CronJob", "va-recordings-expiry"),
    ]
    h.api.writes.clear()
    await h.agents.reconcile(KEY)
    assert h.api.written("delete") == []


async def test_a_missing_storage_secret_is_reported_by_name() -> None:
    """As every Secret the pods need: the status names it (the pods wait for it)."""
    h = harness()
    with_agent(h, recording=RECORDING)
    await h.agents.reconcile(KEY)
    status = h.api.objects[KEY]["status"]
    missing = [c for c in status["conditions"] if "Secret team/s3" in c.get("message", "")]
    assert missing, status["conditions"]
