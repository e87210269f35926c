"""Session fixtures shared by every test suite: the real local Kubernetes control plane, one
Redis with search, one S3-compatible server and one LiveKit server. A suite that needs a server
of its own says why where it starts it (tests/knowledge/test_restart.py stops and restarts its
Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kubevox_devenv.livekit import LiveKitServer
    from kubevox_devenv.redis import RedisSearchServer
    from kubevox_devenv.s3 import S3Server

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


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisSearchServer]:
    """One Redis with search (RediSearch) on a free loopback port, for the session. Tests keep
    apart by their own index names, key prefixes and namespaces; none flushes it."""
    from kubevox_devenv.redis import RedisSearchServer

    with RedisSearchServer() as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-compatible server (S3Proxy, filesystem backend) on a free loopback port, for the
    session. Tests keep apart by their own bucket names."""
    from kubevox_devenv.s3 import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture(scope="session")
def livekit(redis_server: RedisSearchServer) -> Iterator[LiveKitServer]:
    """One real livekit-server on loopback, for the session. It uses the shared Redis, which
    turns on its SIP API (trunks, dispatch rules) that the telephony tests need; tests keep
    apart by their own room names, agent names and the owner metadata of their SIP objects."""
    from kubevox_devenv.livekit import LiveKitServer

    with LiveKitServer(redis_url=redis_server.url) as server:
        yield server
