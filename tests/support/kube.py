"""Test-side access to the control plane: kubectl as the admin, and what a kubelet would do."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubevox_devenv.controlplane import ControlPlane

T = TypeVar("T")
Obj = dict[str, Any]


class Kubectl:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> str:
        out = self.plane.kubectl_run(*args, input=input)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
        return out.stdout

    def apply(self, obj: Obj | list[Obj]) -> None:
        items = obj if isinstance(obj, list) else [obj]
        self(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )

    def get(self, kind: str, name: str, ns: str) -> Obj | None:
        out = self.plane.kubectl_run(
            "get", kind, name, "-n", ns, "-o", "json", "--show-managed-fields"
        )
        return json.loads(out.stdout) if out.returncode == 0 else None

    def list(self, kind: str, ns: str, selector: str = "") -> list[Obj]:
        args = ["get", kind, "-n", ns, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[Obj] = json.loads(self(*args))["items"]
        return items

    def patch_status(self, kind: str, name: str, ns: str, status: Obj) -> None:
        self(
            "patch",
            kind,
            name,
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def delete_and_wait_recreated(
    k: Kubectl, kind: str, name: str, ns: str, timeout: float = 30.0
) -> Obj:
    """Delete a child behind the operator's back; the operator's copy that replaces it."""
    old = k.get(kind, name, ns)
    assert old is not None, f"{kind} {ns}/{name} not there to delete"
    k("delete", kind, name, "-n", ns)
    return wait_for(
        f"{kind} {name} recreated",
        lambda: (
            new
            if (new := k.get(kind, name, ns)) and new["metadata"]["uid"] != old["metadata"]["uid"]
            else None
        ),
        timeout,
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(obj: Obj | None, type_: str) -> Obj:
    for c in (obj or {}).get("status", {}).get("conditions", []) or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def make_pods_ready(k: Kubectl, ns: str, selector: str) -> int:
    """What a kubelet reports once the worker's readiness probe passes."""
    t = now()
    pods = k.list("pods", ns, selector)
    for pod in pods:
        k.patch_status(
            "pod",
            pod["metadata"]["name"],
            ns,
            {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": t},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": t},
                ],
                "containerStatuses": [
                    {
                        "name": "agent",
                        "image": "x",
                        "imageID": "",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": t}},
                    }
                ],
            },
        )
    return len(pods)


def ingest_exited(
    exit_code: int, message: str, reason: str | None, started: str, finished: str
) -> Obj:
    """The ingest container's status once it exited, as a kubelet writes it."""
    return {
        "name": "ingest",
        "image": "x",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                "message": message,
                "startedAt": started,
                "finishedAt": finished,
            }
        },
    }


def finish_ingest_pod(
    k: Kubectl, ns: str, job: str, exit_code: int, result: Obj, reason: str | None = None
) -> None:
    """What a kubelet reports when `kubevox-agent ingest` exits: the phase, the exit code and
    the termination message the command wrote (its result JSON). With ``reason="OOMKilled"``:
    what it reports when the kernel killed the container (exit 137, the log's tail as the
    message, since the command never wrote its result)."""
    pod = wait_for(f"a pod of Job {job}", lambda: k.list("pods", ns, f"job-name={job}"))[0]
    t = now()
    message = json.dumps(result) if reason != "OOMKilled" else "embedding 4096 passages\n"
    k.patch_status(
        "pod",
        pod["metadata"]["name"],
        ns,
        {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": t}],
            "containerStatuses": [ingest_exited(exit_code, message, reason, t, t)],
        },
    )
