"""Revisions and ``kubevox-agent rollback`` on the real control plane with the real operator:
each configuration applied is a revision whose spec the operator keeps in a ControllerRevision,
and the command writes an earlier one back, which the operator applies as a new revision."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from kubevox_api import contract

from tests.support.kube import Kubectl, wait_for
from tests.support.objects import secrets, voice_agent

pytestmark = pytest.mark.cluster

FIRST = "You are a helpful clinic assistant."
SECOND = "You are a terse clinic assistant."


def revisions(kubectl: Kubectl, ns: str, count: int) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        va = kubectl.get("voiceagent", "va", ns) or {}
        found = (va.get("status") or {}).get("revisions") or []
        return found if len(found) == count else None

    return wait_for(f"{count} revisions", probe, timeout=60)


def rollback(kubectl: Kubectl, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_runtime", "rollback", "va", "-n", ns, *args],
        env={"KUBECONFIG": str(kubectl.plane.kubeconfig), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_earlier_configuration_is_rolled_back_to_and_applied_as_a_new_revision(
    kubectl: Kubectl, namespace: str
) -> None:
    ns = namespace
    kubectl.apply([*secrets(ns), voice_agent("va", ns, instructions=FIRST)])
    [first] = revisions(kubectl, ns, 1)
    kubectl("patch", "voiceagent", "va", "-n", ns, "--type=merge",
            "-p", f'{{"spec": {{"instructions": "{SECOND}"}}}}')  # fmt: skip
    second, _ = revisions(kubectl, ns, 2)
    assert second["configHash"] != first["configHash"]
    kept = kubectl.list("controllerrevision", ns, f"{contract.LABEL_VOICE_AGENT}=va")
    assert {r["metadata"]["labels"][contract.LABEL_CONFIG_HASH] for r in kept} == {
        first["configHash"],
        second["configHash"],
    }

    refused = rollback(kubectl, ns, "--to", "0000000")
    assert refused.returncode == 2
    assert "--to 0000000: no such revision" in refused.stderr

    done = rollback(kubectl, ns)  # default: the previous one (nothing was tested here)
    assert done.returncode == 0, done.stderr
    assert first["configHash"] in done.stdout
    va = kubectl.get("voiceagent", "va", ns)
    assert va is not None
    assert va["spec"]["instructions"] == FIRST
    newest, *older = revisions(kubectl, ns, 3)
    assert newest["configHash"] == first["configHash"]
    assert newest["generation"] == va["metadata"]["generation"] == 3
    assert [r["configHash"] for r in older] == [second["configHash"], first["configHash"]]
