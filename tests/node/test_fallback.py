"""Where the machine cannot run a node, `make cluster-up` says why and starts the control plane
alone, exactly as without a node (on 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubevox_devenv import cluster
from kubevox_devenv import node as nodemod

pytestmark = pytest.mark.cluster


def test_cluster_up_without_a_node_says_why_and_starts_the_control_plane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(nodemod, "why_not", lambda: "no usable cgroups (pretended)")
    try:
        assert cluster.up(tmp_path, crds=False, node=True) == 0
        out = capsys.readouterr().out
        assert "no node: no usable cgroups (pretended); starting the control plane only" in out
        state = json.loads((tmp_path / "controlplane" / "state.json").read_text())
        assert state["server"].startswith("https://127.0.0.1:")
        assert "node" not in state
        assert not (tmp_path / "node").exists()
    finally:
        cluster.down(tmp_path, quiet=True)
    assert not (tmp_path / "controlplane").exists()
