"""Start and stop the local servers kubevox tests and demos run against, leaving nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


# Listening ports come from below the kernel's ephemeral range (and below the NodePort range
# the node's kube-proxy may hold): a port the kernel handed out (bind to 0) is also the local
# end of the next outgoing connections, so a server started a few seconds later could find it
# taken ("address already in use", a capacity test's second worker on a loaded machine).
_LISTEN_PORTS = range(15000, 30000)


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port() -> int:
    """A TCP port that nothing is bound to right now and outgoing connections never take."""
    ephemeral = _ephemeral_ports()
    candidates = [p for p in _LISTEN_PORTS if p not in ephemeral]
    for port in random.sample(candidates, 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in {_LISTEN_PORTS}")


def wait_for(
    what: str,
    ready: Callable[[], bool],
    timeout: float,
    alive: Callable[[], bool],
    log_tail: Callable[[], str] = str,
) -> None:
    """Poll ``ready`` until it is true; fail naming ``what`` and quoting the end of its log
    (``log_tail``): early if the process died, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited while starting:\n{log_tail()}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    tail = log_tail()
    raise TimeoutError(
        f"{what} not ready after {timeout:.0f}s" + (f"; its log ends:\n{tail}" if tail else "")
    )


async def eventually(what: str, probe: Callable[[], Awaitable[T | None]], within: float) -> T:
    """Await ``probe`` every 0.2 s until it gives something true, and return that; fail naming
    ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if result := await probe():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")


def die_with_parent() -> None:
    """In a child before exec (Linux): kill it when the process that started it dies, so a test
    run or demo that is killed leaves no server behind. SIGKILL, because some servers (livekit)
    take their time over a SIGTERM and nobody is left to insist."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class ManagedProcess:
    """A child process in its own session (so stopping it stops its children), logging to a
    file, and ended with its parent unless ``detached`` (``make cluster-up``'s control plane
    outlives the command that starts it)."""

    name: str
    argv: Sequence[str]
    log: Path
    env: dict[str, str] | None = None
    detached: bool = False
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=None if self.detached else die_with_parent,
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen is None:
            return
        stop_process_group(self.popen.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=1)


def stop_process_group(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL what is left after ``timeout``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        _reap(pid)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def cache_dir() -> Path:
    """~/.cache/kubevox (KUBEVOX_CACHE, then XDG_CACHE_HOME, honoured like the build scripts)."""
    if root := os.environ.get("KUBEVOX_CACHE"):
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kubevox"


def built(script: Path, *args: str) -> Path:
    """Run one of hack/'s build scripts (each builds once, caches, and prints the path of what
    it built last; its progress goes to stderr) and return that path."""
    out = subprocess.run(
        ["bash", str(script), *args], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def is_alive(pid: int) -> bool:
    """The process exists (perhaps another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmdline(pid: int) -> str:
    """Its command line, space-separated ("" once it is gone): a pid in a state file may have
    been reused by another program since."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts as a member; treat "only zombies left" as gone.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            return True
    return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
