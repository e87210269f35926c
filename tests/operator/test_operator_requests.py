"""The operator's own requests and its start (issue #15): spec.livekit.url may not aim it at
internal addresses, a LiveKit gone for good does not hold a deletion forever, and a cluster
without kopf's peering CRD gets a working operator that says so."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from kubevox_api.contract import SIP_FINALIZER
from kubevox_devenv.livekit import LiveKitServer
from kubevox_devenv.procs import free_port
from kubevox_operator.__main__ import choose_standalone, parse_args
from kubevox_operator.egress import parse_cidrs, refused
from livekit import api

from tests.support.kube import Kubectl, wait_for
from tests.support.objects import secrets, voice_agent
from tests.support.operator_process import OperatorProcess

from .conftest import SIP_CLEANUP_SECONDS
from .sip_helpers import (
    cluster_secrets,
    lk_call,
    lk_rules,
    lk_trunks,
    phone_agent,
    sip_ready,
    telephony,
)

# --- pure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.2",
        "169.254.169.254",  # the cloud metadata service
        "10.96.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # shared (CGNAT)
        "0.0.0.0",
        "::1",
        "fd00:ec2::254",  # AWS's IPv6 metadata address
        "fe80::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_internal_addresses_are_refused_unless_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert refused(ip, ())
    assert not refused(ip, parse_cidrs("0.0.0.0/0,::/0"))


def test_public_addresses_are_allowed_and_the_allow_list_is_exact() -> None:
    assert not refused(ipaddress.ip_address("203.0.114.1"), ())
    assert not refused(ipaddress.ip_address("8.8.8.8"), ())
    allowed = parse_cidrs("10.96.0.0/12, 127.0.0.1")
    assert not refused(ipaddress.ip_address("10.96.0.10"), allowed)
    assert not refused(ipaddress.ip_address("127.0.0.1"), allowed)
    assert refused(ipaddress.ip_address("127.0.0.2"), allowed)
    assert refused(ipaddress.ip_address("10.244.0.5"), allowed)


def test_flags_and_env(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KUBEVOX_LIVEKIT_ALLOWED_CIDRS", raising=False)
    monkeypatch.delenv("KUBEVOX_SIP_CLEANUP_TIMEOUT_SECONDS", raising=False)
    args = parse_args([])
    assert args.livekit_allowed_cidrs == ()
    assert args.sip_cleanup_timeout_seconds == 600
    monkeypatch.setenv("KUBEVOX_LIVEKIT_ALLOWED_CIDRS", "10.0.0.0/24,10.244.0.0/24")
    assert [str(n) for n in parse_args([]).livekit_allowed_cidrs] == [
        "10.0.0.0/24",
        "10.244.0.0/24",
    ]
    with pytest.raises(SystemExit):
        parse_args(["--livekit-allowed-cidrs", "10.0.0.0/24,nowhere"])
    assert "'nowhere'" in capsys.readouterr().err


def test_no_peering_crd_means_standalone_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert choose_standalone(True, None, True) is True
    assert choose_standalone(False, True, True) is False  # peering served: peers coordinate
    assert choose_standalone(False, None, True) is False  # unknown: kopf reports it
    assert not caplog.records
    assert choose_standalone(False, False, True) is True
    assert "clusterkopfpeerings.kopf.dev" in caplog.text
    assert "standalone" in caplog.text


# --- against the API server and LiveKit ----------------------------------------------------------


class Listener:
    """A TCP port on another loopback address that counts who connects."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@pytest.mark.cluster
def test_livekit_url_on_an_internal_address_is_refused_without_a_request(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    ns = namespace
    kubectl.apply(cluster_secrets(ns, livekit))
    listener = Listener("127.0.0.2")  # loopback, outside the tests' allow list 127.0.0.1/32
    inside = f"ws://127.0.0.2:{listener.port}"
    kubectl.apply(phone_agent("probe", ns, inside, ["+15550600"]))
    cond = wait_for(
        "LiveKitAddressRefused",
        lambda: (
            (c := telephony(kubectl, "probe", ns)).get("reason") == "LiveKitAddressRefused" and c
        ),
        30,
    )
    assert "spec.livekit.url" in cond["message"]
    assert "127.0.0.2" in cond["message"]
    assert "--livekit-allowed-cidrs" in cond["message"]
    assert listener.accepted == 0
    # The metadata service, by name or number, is refused the same way.
    kubectl.apply(phone_agent("probe", ns, "http://169.254.169.254", ["+15550600"]))
    wait_for(
        "metadata address refused",
        lambda: "169.254.169.254" in telephony(kubectl, "probe", ns).get("message", ""),
    )
    # An allowed address works as before.
    kubectl.apply(phone_agent("probe", ns, livekit, ["+15550600"]))
    wait_for("telephony ready", lambda: sip_ready(kubectl, "probe", ns), 40)
    kubectl("delete", "voiceagent", "probe", "-n", ns)
    assert lk_trunks(livekit, ns, "probe") == []
    assert listener.accepted == 0


@pytest.mark.cluster
def test_a_livekit_gone_for_good_releases_the_deletion_after_the_wait_with_an_event(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, livekit: LiveKitServer
) -> None:
    ns = namespace
    kubectl.apply(cluster_secrets(ns, livekit))
    kubectl.apply(phone_agent("gone", ns, livekit, ["+15550700"]))
    va = wait_for("telephony ready", lambda: sip_ready(kubectl, "gone", ns), 40)
    trunk, rule = va["status"]["sipTrunkId"], va["status"]["sipDispatchRuleId"]
    nowhere = f"ws://127.0.0.1:{free_port()}"  # allowed, and nothing listens
    kubectl.apply(phone_agent("gone", ns, nowhere, ["+15550700"]))
    wait_for(
        "LiveKitUnreachable",
        lambda: telephony(kubectl, "gone", ns).get("reason") == "LiveKitUnreachable",
        30,
    )
    kubectl("delete", "voiceagent", "gone", "-n", ns, "--wait=false")
    still = kubectl.get("voiceagent", "gone", ns)
    assert still is not None
    assert SIP_FINALIZER in still["metadata"]["finalizers"]  # it tries, for a while
    wait_for(
        "VoiceAgent released",
        lambda: kubectl.get("voiceagent", "gone", ns) is None,
        SIP_CLEANUP_SECONDS + 30,
    )
    events = json.loads(kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
    [event] = [e for e in events if e["reason"] == "SIPCleanupAbandoned"]
    assert event["type"] == "Warning"
    assert trunk in event["message"]
    assert rule in event["message"]
    assert nowhere in event["message"]
    # What the Event names is indeed left in LiveKit: removed by hand, as it says.
    assert [t.sip_trunk_id for t in lk_trunks(livekit, ns, "gone")] == [trunk]
    lk_call(
        livekit,
        lambda lk: lk.sip.delete_dispatch_rule(
            api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule)
        ),
    )
    lk_call(livekit, lambda lk: lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk)))
    assert lk_rules(livekit, ns, "gone") == []


@pytest.mark.cluster
def test_without_the_peering_crd_the_operator_runs_standalone_and_says_so(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    assert "kopf.dev" not in kubectl("get", "crd", "-o", "name")  # as on make cluster-up's
    peered = OperatorProcess(
        operator.kubeconfig, tmp_path, "--namespace", namespace, standalone=False
    )
    peered.start()
    try:
        kubectl.apply(secrets(namespace))
        kubectl.apply(voice_agent("solo", namespace))

        def reconciled() -> bool:
            url = f"http://127.0.0.1:{peered.metrics_port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    text = resp.read().decode()
            except OSError:
                return False
            return any(
                line.startswith('kubevox_operator_reconciles_total{kind="VoiceAgent"')
                and float(line.rsplit(" ", 1)[1]) > 0
                for line in text.splitlines()
            )

        wait_for("the operator without --standalone reconciles", reconciled, 40)
        warnings = [
            r
            for r in peered.log_records()
            if r.get("level") in ("WARNING", "warning") and "standalone" in str(r.get("message"))
        ]
        assert warnings, peered.log_records()[:20]
        assert "kopfpeerings.kopf.dev" in str(warnings[0]["message"])
    finally:
        peered.stop()
