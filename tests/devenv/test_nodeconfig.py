"""The local node's kubelet configuration: the default CPU policy, and the static CPU manager
the capacity bench asks for (bench/capacity.py --node) to give its worker pod a core of its
own (proven on the node by that bench, which fails when the pod shares the callers' core)."""

from __future__ import annotations

from pathlib import Path

from kubevox_devenv.nodeconfig import kubelet_config


def _config(tmp_path: Path, exclusive_cpus: bool = False) -> dict[str, object]:
    return kubelet_config(
        tmp_path,
        tmp_path / "containerd.sock",
        port=10250,
        healthz_port=10248,
        serving=(tmp_path / "kubelet.crt", tmp_path / "kubelet.key"),
        client_ca=tmp_path / "ca.crt",
        exclusive_cpus=exclusive_cpus,
    )


def test_by_default_kubelet_keeps_its_default_cpu_policy(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert "cpuManagerPolicy" not in config
    assert "systemReserved" not in config
    assert config["cgroupDriver"] == "cgroupfs"


def test_exclusive_cpus_turn_on_the_static_cpu_manager(tmp_path: Path) -> None:
    config = _config(tmp_path, exclusive_cpus=True)
    assert config["cpuManagerPolicy"] == "static"
    # A reservation the policy requires, small enough to leave a whole core allocatable.
    assert config["systemReserved"] == {"cpu": "100m"}
    assert "reservedSystemCPUs" not in config
