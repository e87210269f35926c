"""What the system tests print when the fleet does not do what they expect: the workers' log
lines about a call, what the autoscaler saw, and the last lines each pod logged."""

from __future__ import annotations

from kubevox_devenv import install as installmod
from kubevox_devenv.fleet import Fleet
from kubevox_operator.builders.autoscaling import calls_query

from .conftest import System

WORKER_LABEL = "app.kubernetes.io/instance=offline"


def worker_log_lines(system: System, room: str, most: int = 40) -> str:
    """The worker pods' log lines about ``room`` or above INFO: why a call went unanswered."""
    rows = system.kubectl(
        "get", "pods", "-A", "-l", WORKER_LABEL,
        "-o=jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name}{\"\\n\"}{end}",
    ).split("\n")  # fmt: skip
    lines = []
    for row in filter(None, rows):
        ns, pod = row.split()
        try:
            log = system.kubectl("logs", "-n", ns, pod, "--all-containers", "--tail=2000")
        except installmod.InstallError as e:
            lines.append(f"{pod}: {e}")
            continue
        lines += [
            f"{pod}: {line}"
            for line in log.splitlines()
            if room in line or not any(f'"level": "{lv}"' in line for lv in ("INFO", "DEBUG"))
        ]
    return "\n".join(lines[-most:])


def scaling_state(system: System, namespace: str, fleet: Fleet) -> str:
    """What the autoscaler saw and did, and what each pod says: why the fleet did not follow."""
    calls = system.prometheus(calls_query(namespace, "offline"))
    hpa = system.kubectl("describe", "hpa", "-n", namespace)
    return (
        f"replicas {fleet.replicas()}, calls by pod {fleet.calls_by_pod()}, calls+waiting in"
        f" Prometheus {calls}, status {fleet.status()}\n{hpa}\n{pod_log_tails(system, namespace)}"
    )


def pod_log_tails(system: System, namespace: str, lines: int = 30) -> str:
    """The last log lines of the agent's pods still in ``namespace``."""
    out = []
    for pod in system.kubectl(
        "get", "pods", "-n", namespace, "-l", WORKER_LABEL, "-o=name"
    ).split():
        try:
            out.append(
                f"== {pod}\n" + system.kubectl("logs", "-n", namespace, pod, f"--tail={lines}")
            )
        except installmod.InstallError as e:
            out.append(f"== {pod}: {e}")
    return "\n".join(out)


def worker_loads(system: System, seconds: int = 120) -> dict[str, float]:
    """Each worker pod's highest reported load over the last ``seconds`` (1.0: full, taking no
    call), from the node's Prometheus: a pod full for minutes leaves its calls waiting."""
    query = f"max by (pod) (max_over_time(kubevox_worker_load[{seconds}s]))"
    try:
        return {m.get("pod", "?"): v for m, v in system.prometheus_vector(query)}
    except OSError:
        return {}


def unanswered(system: System, namespace: str, room: str) -> str:
    """Why nobody answered a call in ``room``: the pods, their loads, and what they logged."""
    pods = system.kubectl("get", "pods", "-n", namespace, "-o=wide")
    return (
        f"the call in room {room} was not answered; pods:\n{pods}\nthe highest load of each"
        f" worker over 120 s: {worker_loads(system)}\nwhat the workers logged of note:\n"
        + worker_log_lines(system, room)
    )
