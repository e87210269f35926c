"""The operator as a real process, authenticated as its ServiceAccount (RBAC enforced)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubevox_devenv import controlplane
from kubevox_devenv.procs import free_port

SA_USER = "system:serviceaccount:kubevox-system:kubevox-operator"


def service_account_kubeconfig(admin_kubeconfig: Path, token: str, out: Path) -> Path:
    """The admin kubeconfig's cluster, with the ServiceAccount's token as the user."""
    cfg = yaml.safe_load(admin_kubeconfig.read_text())
    cfg["users"] = [{"name": "kubevox-operator", "user": {"token": token}}]
    cfg["contexts"] = [
        {
            "name": "operator",
            "context": {"cluster": cfg["clusters"][0]["name"], "user": "kubevox-operator"},
        }
    ]
    cfg["current-context"] = "operator"
    out.write_text(yaml.safe_dump(cfg))
    out.chmod(0o600)
    return out


class OperatorProcess:
    def __init__(
        self, kubeconfig: Path, log_dir: Path, *extra: str, standalone: bool = True
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.extra = extra
        self.standalone = standalone
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.metrics_port = 0

    @property
    def log(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self.metrics_port = free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubevox_operator",
                *(["--standalone"] if self.standalone else []),
                "--metrics-port",
                str(self.metrics_port),
                "--liveness",
                f"http://127.0.0.1:{free_port()}/healthz",
                *self.extra,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies."""
        if self.proc:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM: the graceful path."""
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.log_dir.glob("operator-*.log")):
            for line in path.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"level": "raw", "message": line})
        return out


def audit_writes(audit_log: Path, user: str, since: float) -> list[dict[str, Any]]:
    """Write requests (create/update/patch/delete) ``user`` made since ``since`` (epoch s)."""
    return controlplane.audit_writes(audit_log, since=since, user=user)


def wait_quiet(audit_log: Path, user: str, quiet: float = 3.0, timeout: float = 60) -> None:
    """Until ``user`` has written nothing for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not audit_writes(audit_log, user, time.time() - quiet):
            return
        time.sleep(0.5)
    raise AssertionError("the operator kept writing")
