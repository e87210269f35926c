"""A local S3-compatible server, for tests that store call recordings in object storage.

S3Proxy (Apache-2.0, https://github.com/gaul/s3proxy) serves the S3 API from a local directory
with its ``filesystem`` backend: an object ``key`` in bucket ``b`` is the file
``basedir/b/key``, its ``LastModified`` is the file's mtime. So the tests upload with the same
client code that talks to AWS S3 or MinIO in production (requests signed with AWS Signature V4,
checked against a random access key and secret key), and can look at, or age, what landed on
disk. hack/tools/fetch-s3proxy.sh fetches its jar once from Maven Central (sha256 pinned); it
runs under ``java`` >= 17 (hack/install-system.sh installs Debian's).

The server listens on one address (127.0.0.1 unless given: the node tests pass a bridge address
that pods can reach) and a free port. It dies with its parent (PR_SET_PDEATHSIG), so a killed
test run leaves no stray JVM. A JVM takes a few seconds to start, more on a loaded machine.

Run ``python -m kubevox_devenv.s3`` to keep one in the foreground; it prints its endpoint and
keys.
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .procs import built, die_with_parent, free_port

if TYPE_CHECKING:
    from minio import Minio

REPO = Path(__file__).resolve().parents[3]
FETCH_SCRIPT = REPO / "hack" / "tools" / "fetch-s3proxy.sh"
JAR_ENV = "KUBEVOX_S3PROXY_JAR"
REGION = "us-east-1"

# A short-lived test server: the client compiler alone (C1) halves the JVM's start (3 s instead
# of 6 s on a loaded 2-core machine), and the serial collector in a small heap keeps it from
# sizing itself to the host. Objects are streamed, not held in memory.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m")


class S3UnavailableError(RuntimeError):
    """java or the S3Proxy jar cannot be found, or the server did not start."""


def s3proxy_jar() -> Path:
    """S3Proxy's jar (``$KUBEVOX_S3PROXY_JAR`` overrides), fetched once by the tools script."""
    if env := os.environ.get(JAR_ENV):
        return Path(env)
    try:
        return built(FETCH_SCRIPT) / "s3proxy.jar"
    except subprocess.CalledProcessError as e:
        raise S3UnavailableError(f"{FETCH_SCRIPT} failed (exit {e.returncode})") from e


def java() -> str:
    if path := shutil.which("java"):
        return path
    raise S3UnavailableError("java (>= 17) is required to run S3Proxy: run hack/install-system.sh")


def _properties(values: dict[str, str]) -> str:
    """A Java properties file; the values' backslashes escaped, the rest taken literally."""
    return "".join(f"{k}={v.replace(chr(92), chr(92) * 2)}\n" for k, v in values.items())


def _answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Something speaks HTTP there (any status: an unsigned request gets 403)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class S3Server:
    """One S3Proxy on the filesystem backend; ``start``/``stop`` or ``with``."""

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, basedir: Path | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.access_key = f"kubevox-{secrets.token_hex(6)}"
        self.secret_key = secrets.token_hex(20)
        self.region = REGION
        self.run_dir = Path(tempfile.mkdtemp(prefix="kubevox-s3-"))
        self.basedir = basedir or self.run_dir / "data"
        self.log = self.run_dir / "s3proxy.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def netloc(self) -> str:
        """``host:port``, as the minio client takes it."""
        return self.endpoint.removeprefix("http://")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        if self.running():
            return
        self.basedir.mkdir(parents=True, exist_ok=True)
        props = self.run_dir / "s3proxy.conf"
        props.write_text(
            _properties(
                {
                    "s3proxy.endpoint": self.endpoint,
                    "s3proxy.authorization": "aws-v2-or-v4",
                    "s3proxy.identity": self.access_key,
                    "s3proxy.credential": self.secret_key,
                    "jclouds.provider": "filesystem",
                    "jclouds.filesystem.basedir": str(self.basedir),
                }
            )
        )
        props.chmod(0o600)  # it holds the secret key
        args = [java(), *JVM_OPTIONS, "-jar", str(s3proxy_jar()), "--properties", str(props)]
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # the child has no threads yet
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._proc.poll() is None:
            if _answers(self.host, self.port):
                return
            time.sleep(0.1)
        exited = self._proc.poll()
        self.stop()
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        what = f"exited with {exited}" if exited is not None else f"no answer after {timeout:.0f}s"
        raise S3UnavailableError(
            f"s3proxy did not start on {self.endpoint} ({what}); its log, {self.log}:\n{tail}"
        )

    def stop(self) -> None:
        """SIGTERM (Jetty stops), then SIGKILL if the JVM is still there after 5 s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def close(self) -> None:
        """Stop the server and remove its directory (and the default basedir within it)."""
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def client(self, secret_key: str | None = None) -> Minio:
        """A minio client for this server (plain HTTP); ``secret_key`` overrides the right one."""
        from minio import Minio

        return Minio(
            self.netloc,
            access_key=self.access_key,
            secret_key=self.secret_key if secret_key is None else secret_key,
            secure=False,
            region=self.region,
        )

    def make_bucket(self, name: str) -> None:
        """Create bucket ``name`` unless it exists (a directory under ``basedir``)."""
        client = self.client()
        if not client.bucket_exists(name):
            client.make_bucket(name)

    def __enter__(self) -> S3Server:
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
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    server = S3Server(host=host)
    server.start()
    print(f"endpoint={server.endpoint}", flush=True)
    print(f"access_key={server.access_key}\nsecret_key={server.secret_key}", flush=True)
    print(f"basedir={server.basedir}", flush=True)

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
