"""Session fixtures shared by every test suite: the real local Kubernetes control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[object]:
    """etcd + kube-apiserver + kube-controller-manager on free loopback ports, for the session.

    Set KUBEVOX_TEST_KEEP=1 to keep its directory (logs, audit log) after the run.
    """
    from kubevox_devenv.controlplane import temporary_control_plane

    with temporary_control_plane() as plane:
        yield plane


@pytest.fixture(scope="session")
def crds_installed(control_plane: object) -> object:
    """The committed CRDs, installed and Established."""
    from kubevox_devenv.controlplane import ControlPlane

    assert isinstance(control_plane, ControlPlane)
    control_plane.install_crds()
    return control_plane
