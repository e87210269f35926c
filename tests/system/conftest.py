"""The product as a system: one real node (kubevox_devenv.cluster), kubevox installed on it the
way users install it (`make install`: the Helm chart, the images built here, LiveKit and Redis
as pods), and the samples applied with kubectl. Starting and installing cost minutes, so the
suite shares one cluster."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubevox_api import contract
from kubevox_devenv import install as installmod
from kubevox_devenv import node as nodemod
from kubevox_devenv.cluster import temporary_cluster
from kubevox_devenv.fleet import Fleet

from agent_runtime.caller import SimulatedCall

pytestmark = [pytest.mark.node, pytest.mark.system]


@dataclass
class System:
    kube: installmod.Kube
    workdir: Path
    keys: tuple[str, str]

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.kube.run(*args, input=input)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(
            self.kubectl("get", kind, name, "-n", namespace, "-o=json")
        )
        return out

    def prometheus(self, query: str) -> float | None:
        """The value of an instant PromQL query on the installed Prometheus (None: no data)."""
        result = self.prometheus_vector(query)
        return result[0][1] if result else None

    def prometheus_vector(self, query: str) -> list[tuple[dict[str, str], float]]:
        """Each series' labels and value of an instant PromQL query on the installed
        Prometheus."""
        ip = self.kubectl(
            "get", "service", "prometheus", "-n", "monitoring", "-o=jsonpath={.spec.clusterIP}"
        )
        url = f"http://{ip}:9090/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=5) as resp:
            result = json.load(resp)["data"]["result"]
        return [(r["metric"], float(r["value"][1])) for r in result]

    def livekit_url(self) -> str:
        return installmod.livekit_host_url(self.kube)


def wait_until(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (installmod.InstallError, OSError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")


async def await_until(
    what: str, probe: Callable[[], Any], within: float, explain: Callable[[], str] | None = None
) -> Any:
    """wait_until for tests with live calls: the probe runs in a thread, so the event loop
    keeps the callers' audio flowing while the cluster is polled. On a timeout, ``explain``
    says what the test saw."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await asyncio.to_thread(probe)
        except (installmod.InstallError, OSError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(1)
    seen = f"\n{await asyncio.to_thread(explain)}" if explain else ""
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what} (last: {last}){seen}")


@dataclass
class PodRecord:
    """One pod's life as the API server's watch told it."""

    name: str
    ready_at: float | None = None
    """time.monotonic() when its Ready condition first turned True."""
    deleting_at: float | None = None
    calls_when_deleted: str | None = None
    """Its kubevox.dev/active-calls annotation when its deletion began."""
    exit_code: int | None = None
    gone_at: float | None = None


@dataclass
class PodHistory:
    """The pods of a namespace that match a label selector, from a watch that runs beside the
    tests: a pod removed by a scale-down or a rollout leaves the API server seconds after it
    exits, too fast to poll."""

    kubeconfig: Path
    namespace: str
    selector: str
    pods: dict[str, PodRecord] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="pod-history", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _watch(self) -> None:
        from kubernetes import client, config, watch

        api = client.CoreV1Api(config.new_client_from_config(str(self.kubeconfig)))  # type: ignore[no-untyped-call]
        version = ""
        while not self._stop.is_set():
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                api.list_namespaced_pod,
                self.namespace,
                label_selector=self.selector,
                resource_version=version or None,
                timeout_seconds=5,
            )
            try:
                for event in stream:
                    pod = api.api_client.sanitize_for_serialization(event["object"])
                    version = pod["metadata"]["resourceVersion"]
                    self._observe(event["type"], pod)
            except client.ApiException as e:
                if e.status == 410:  # our resourceVersion is too old: list afresh
                    version = ""
            except Exception as e:  # a dropped connection: watch again from where we were
                self.errors.append(repr(e))
                time.sleep(1)

    def _observe(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        now = time.monotonic()
        record = self.pods.setdefault(meta["uid"], PodRecord(meta["name"]))
        conditions = (pod.get("status") or {}).get("conditions") or []
        if record.ready_at is None and any(
            c["type"] == "Ready" and c["status"] == "True" for c in conditions
        ):
            record.ready_at = now
        if record.deleting_at is None and meta.get("deletionTimestamp"):
            record.deleting_at = now
            annotations = meta.get("annotations") or {}
            record.calls_when_deleted = annotations.get(contract.ACTIVE_CALLS_ANNOTATION)
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if terminated is not None:
                record.exit_code = terminated["exitCode"]
        if kind == "DELETED":
            record.gone_at = now

    def by_name(self, name: str) -> PodRecord:
        return next(r for r in self.pods.values() if r.name == name)


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    if reason := nodemod.why_not():
        pytest.skip(f"this machine cannot run a node: {reason}")
    workdir = tmp_path_factory.mktemp("system")
    with temporary_cluster("kubevox-system-") as (plane, node):
        kube = installmod.Kube(plane.kubectl, plane.kubeconfig)
        state = node.state()
        containerd = (Path(str(state["containerd"])), str(state["snapshotter"]))
        installmod.install(kube, workdir, containerd)
        yield System(kube, workdir, installmod.livekit_keys(workdir))


@pytest.fixture(scope="session")
def namespace(system: System) -> str:
    """A tenant's namespace with the Secrets the samples reference (`make dev-secrets`)."""
    ns = f"sys-{uuid.uuid4().hex[:6]}"
    installmod.dev_secrets(system.kube, ns, system.keys)
    return ns


@pytest.fixture(scope="session")
def pod_history(system: System, namespace: str) -> Iterator[PodHistory]:
    """The sample VoiceAgent's worker pods."""
    history = PodHistory(system.kube.kubeconfig, namespace, f"{contract.LABEL_VOICE_AGENT}=offline")
    yield history
    history.stop()


@pytest.fixture(scope="module")
def fleet(system: System, namespace: str) -> Fleet:
    return Fleet(system.kube, namespace, "offline")


@pytest.fixture(scope="module")
async def live_calls() -> AsyncIterator[dict[str, SimulatedCall]]:
    """Calls that stay up across the scaling tests, by name; whatever is left hangs up."""
    calls: dict[str, SimulatedCall] = {}
    yield calls
    for call in calls.values():
        await call.hang_up()
