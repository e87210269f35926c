"""The Argo CD health checks for VoiceAgent and KnowledgeBase, run by real Lua interpreters
(Debian's lua5.1 — Argo CD's gopher-lua dialect — and lua5.4) against the sample objects in
Argo CD's own health_test.yaml layout; the harness itself is proven on Argo CD's KServe check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import lua
from tests.support.tools import MANIFESTS, lua_interpreters, third_party

HEALTH = MANIFESTS / "argocd" / "health" / "kubevox.dev"
KINDS = ("VoiceAgent", "KnowledgeBase", "VoiceAgentTest")

INTERPRETERS = lua_interpreters()
needs_lua = pytest.mark.skipif(
    not INTERPRETERS,
    reason="no Lua interpreter: apt-get install -y lua5.1 lua5.4 (Debian packages) to run these",
)


def _cases(check_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    spec = yaml.safe_load((check_dir / "health_test.yaml").read_text())
    return [(check_dir / t["inputPath"], t["healthStatus"]) for t in spec["tests"]]


CASES = [
    pytest.param(kind, path, expected, id=f"{kind}-{path.stem}")
    for kind in KINDS
    for path, expected in _cases(HEALTH / kind)
]


@needs_lua
@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize(("kind", "path", "expected"), CASES)
def test_health_check(interpreter: str, kind: str, path: Path, expected: dict[str, str]) -> None:
    obj = yaml.safe_load(path.read_text())
    assert obj["kind"] == kind
    assert lua.health(interpreter, HEALTH / kind / "health.lua", obj) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_every_outcome_is_covered(kind: str) -> None:
    """Each check is exercised into Healthy, Progressing and Degraded, and for a stale
    generation (generation != observedGeneration)."""
    cases = _cases(HEALTH / kind)
    assert {e["status"] for _, e in cases} == {"Healthy", "Progressing", "Degraded"}
    stale = [p for p, e in cases if "observe generation" in e["message"]]
    assert stale, "no generation != observedGeneration case"
    for p in stale:
        obj = yaml.safe_load(p.read_text())
        conds = obj["status"].get("conditions", [])
        assert (
            any(
                c.get("observedGeneration") not in (None, obj["metadata"]["generation"])
                for c in conds
            )
            or obj["status"]["observedGeneration"] != obj["metadata"]["generation"]
        )


def test_argocd_cm_patch_carries_the_checks() -> None:
    patch = yaml.safe_load((MANIFESTS / "argocd" / "argocd-cm-patch.yaml").read_text())
    for kind in KINDS:
        key = f"resource.customizations.health.kubevox.dev_{kind}"
        assert patch["data"][key] == (HEALTH / kind / "health.lua").read_text(), (
            f"{key} is stale: run hack/tools/sync-manifests.sh"
        )


@needs_lua
@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_harness_reproduces_argocd_kserve_expectations(interpreter: str) -> None:
    """Argo CD's own KServe InferenceService check and test data (from its Go module) give the
    results Argo CD's test suite expects when run through this harness."""
    check = third_party() / "argocd" / "InferenceService"
    cases = _cases(check)
    assert len(cases) >= 5
    for path, expected in cases:
        got = lua.health(interpreter, check / "health.lua", yaml.safe_load(path.read_text()))
        assert got == expected, path.name
